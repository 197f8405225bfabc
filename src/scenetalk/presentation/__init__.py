

# What `scenetalk demo --help` shows lives here, where importing it costs nothing.
#: Detector confidence a box needs to be listed and drawn: the detector's boxes below it are
#: mostly wrong on everyday photos (a 0.06 "person" on a cup).
MIN_DETECTOR_SCORE = 0.3
