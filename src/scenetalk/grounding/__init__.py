

# The settings the commands show in --help live here, where importing them costs nothing.
#: The MRF's β for snippets, chosen on the Flickr8K dev images: the β whose snippets best match
#: the human phrases of Flickr30K Entities (``snippet_agreement`` F1 3.57 at 0.75, 3.46 at 0.5,
#: 3.12 at 1; ``python benchmarks/tune_grounding.py``).
DEFAULT_BETA = 0.75
#: Words (and MRF segments, by their summed score) scoring at most this are shown grey and
#: unlinked, as the paper hides "the alignments of low-scoring words to reduce clutter".
#: Chosen on Flickr8K val (first 300 photos, 1,500 sentences; never on test) as the smallest
#: threshold that links at most 10% of the function words (a, the, in, on, ...), whose best
#: score hovers just above 0: v_iᵀ s_t <= 0, the obvious cut, still links 50% of them; 0.1
#: links 18%, 0.2 links 9% while 39% of the other words stay linked (51% at 0, 45% at 0.1).
#: ``python benchmarks/tune_align_display.py --features features/flickr8k-val300-regions
#: --root ../shared/data`` (BENCHMARKS.md, "Alignment pictures").
LOW_SCORE = 0.2
#: The MRF's β for one sentence's alignment as shown (``align_words``: ``Scenetalk.align``,
#: ``scenetalk align``), smaller than the snippets' ``DEFAULT_BETA``. β is in units of v_iᵀ s_t,
#: and the shipped model's word scores are small (the best region of a Flickr8K val word
#: scores 0.004 at the median, 0.84 at the 90th percentile): at 0.75 a neighbour's bonus
#: outweighs nearly every word's preference, segments average 4.4 words, 69% of their words
#: scoring <= 0 on the segment's region, and the segments of 38% of the sentences link nothing.
#: Chosen on the same val sentences (links shown above ``LOW_SCORE``) as the largest β at which
#: at least 75% of the words linked on their own stay linked to their region: at 0.2 that is
#: 79%, the MRF joins 74% of the function words to a neighbour (17% at β = 0) and 92% of the
#: sentences keep a linked segment (0.1: 89%, 58%, 95%; 0.3: 69%, 84%, 88%); same command.
ALIGN_BETA = 0.2
