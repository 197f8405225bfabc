"""Every limit scenetalk puts on what one call may ask for, in one place (README "Limits").

They bound the work and memory a single request can cause: a caller (or a web request) that
asks for more gets a one-line ``ScenetalkError`` naming the argument, never minutes of work or
an allocation that takes the machine down.
"""

from __future__ import annotations

#: Words of one sentence, query or snippet that are read: longer ones are refused (the
#: Flickr8K training sentences have at most 37).
MAX_WORDS = 200
#: Characters of one sentence, query or snippet (bounds a "word" with no spaces in it).
MAX_SENTENCE_CHARS = 20 * MAX_WORDS
#: Beam size and n-best of caption decoding (both papers use 7).
MAX_BEAM = 100
#: Words of one generated caption or phrase.
MAX_CAPTION_WORDS = 100
#: Images decoded and embedded at a time.
MAX_BATCH = 1024
#: Results one search or describe returns, and candidates it scores exactly.
MAX_RESULTS = 10_000
MAX_CANDIDATES = 1_000_000
#: Width of one layer of a model (a hidden, embedding or feature size) in a training config
#: or a checkpoint's config.json; the shipped models use at most 1,280.
MAX_LAYER_SIZE = 65_536
#: Words of a model's vocabulary (Flickr8K's has 2,538 with min_count 5).
MAX_VOCABULARY = 1_000_000
#: Parameters of one model, counted before it is built (the shipped captioner has 5.4 million).
MAX_PARAMETERS = 2_000_000_000
#: Sentences (or images) of one training batch, and epochs of one run.
MAX_TRAIN_BATCH = 65_536
MAX_EPOCHS = 1_000_000
