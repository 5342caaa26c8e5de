"""A small seq2seq translator (Spanish -> English by default) built on ``tinygrad_rnn``.

The modules, in pipeline order (each imports, when it runs, only modules above it and the engine)::

    errors          the user-facing error classes; the one reader of user files
    options         typed option fields (help text, checks) that generate the CLI

    data            corpus          read 'english<TAB>other' pairs from a file or zip
                    catalogue       known datasets, download and cache
                    numbers_corpus  a generated Spanish/English numbers corpus (offline runs)
                    splits          train/dev/test with no sentence in two splits
                    tokenize        text <-> tokens (words)
                    noise           casual-input variants of a sentence (evaluate --noise, train --source-noise)
                                    and the source normalisation a model reads through (casefold)
                    subword         the tokenizer interface: words or SentencePiece pieces, sources normalised
                    vocabulary      tokens <-> ids; the one owner of where BOS/EOS go
                    batching        padded, length-bucketed, reproducible batches
    model           model_config    ModelConfig: the network's options, declared and checked once
                    footprint       a model's parameter memory, known (and refused if too big) before it is built
                    encoder         embedding + (bi)directional RNN/GRU/LSTM
                    decoder         one attentional decoder step, shared by training and search
                    model           Seq2Seq: encode, step, training loss
                    checkpoint      the model directory: what training writes and inference reads back
    search          search          greedy and beam search over Seq2Seq.step
                    inference       Translator: sentences in, sentences out (``from translator import Translator``)
                    evaluate        sacreBLEU BLEU/chrF and decoding speed
                    tuning          the beam width and length penalty chosen on dev (``translate tune``)
                    plot            attention figures (optional matplotlib)
    training        config          TrainConfig: data, model and training options (CLI flags, TOML)
                    preparation     TrainConfig -> split, filtered, encoded data and vocabularies
                    parallel        data-parallel training under mpiexec: shares, agreed stops, rank 0 writes
                    training        Trainer: the loop, dev evaluation, stops, exact resume
                    averaging       the mean of the last K epochs' weights (``translate average``)
    CLI             cli             ``translate train | run | evaluate | average | tune`` (``__main__``: ``python -m translator``)
"""


def __getattr__(name):
    """``translator.Translator`` without importing the engine until it is used."""
    if name == "Translator":
        from translator.inference import Translator  # noqa: PLC0415

        return Translator
    raise AttributeError(f"module 'translator' has no attribute {name!r}")
