"""Models, one readable file each: the generators (``multimodal_rnn``, ``mrnn``)."""
