"""Every limit scenetalk puts on what one call may ask for, in one place (README "Limits").

They bound the work and memory a single request can cause: a caller (or a web request) that
asks for more gets a one-line ``ScenetalkError`` naming the argument, never minutes of work or
an allocation that takes the machine down.
"""

from __future__ import annotations

#: Words of one sentence, query or snippet that are read: longer ones are refused (the
#: Flickr8K training sentences have at most 37).
MAX_WORDS = 200
#: Beam size and n-best of caption decoding (both papers use 7).
MAX_BEAM = 100
#: Words of one generated caption or phrase.
MAX_CAPTION_WORDS = 100
#: Images decoded and embedded at a time.
MAX_BATCH = 1024
#: Results one search or describe returns, and candidates it scores exactly.
MAX_RESULTS = 10_000
MAX_CANDIDATES = 1_000_000
