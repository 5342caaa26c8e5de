"""A small seq2seq translator (Spanish -> English by default) built on ``tinygrad_rnn``."""
