"""Runs that travel: one archive of a run (``archive``), and the pictures and words a run
carries so that its map shows without its data set (``thumbnails``)."""
