"""A PyTorch twin of ``translator.model.Seq2Seq`` (default ``ModelConfig``), the speed reference.

Runs under the separate PyTorch environment (PyTorch is never a dependency of this project), as
``bench/torch_worker.py --mode seq2seq``; ``bench/seq2seq_speed.py`` drives it. It is what a
PyTorch user writes for the same network, eager mode:

- encoder: embedding -> dropout -> bidirectional ``nn.GRU`` over ``pack_padded_sequence``;
- bridge: ``tanh(Linear([h_fwd; h_bwd]))``, the decoder's initial state;
- decoder step (input feeding): ``h = GRUCell([dropout(embed(y)); attentional_prev], h)``;
  additive attention ``v^T tanh(W_q h + W_k k_s)`` with the keys projected once per batch,
  masked softmax, context; ``attentional = dropout(tanh(W_c [h; context]))``;
- output layer and label-smoothed cross-entropy on the non-PAD target positions only (the rows
  picked with host indices, as ``Seq2Seq.loss`` does: the same work on both sides);
- Adam, global gradient-norm clipping at 5 (as ``translator.training.Trainer``);
- greedy decoding batched over the sentences, stopping when all are finished (one
  ``finished.all()`` per step, as usually written); beam search the same way, B*K rows, one
  ``topk`` over each sentence's K*V continuations per step, GNMT length penalty at the end.

The module and parameter names are ``Seq2Seq``'s, so our ``state_dict`` loads here unchanged (the
driver sends it): both sides start from the same weights, and ``results`` (loss and gradient norm
in eval mode, greedy tokens) checks that the twin computes what ours computes.

Shapes: B batch, S source length, T target length, E embedding, H hidden, V target vocabulary.
Token ids: PAD=0, BOS=1, EOS=2 (``translator.vocabulary``).
"""
from __future__ import annotations

import json
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from timing import time_methods  # bench/timing.py: this script's folder is first on sys.path

PAD, BOS, EOS = 0, 1, 2
TIMED = ("train", "greedy")


class Encoder(nn.Module):
    def __init__(self, vocab_size, embedding_size, hidden_size, dropout):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout)
        self.rnn = nn.GRU(embedding_size, hidden_size, batch_first=True, bidirectional=True)

    def forward(self, source, lengths):
        """(B, S) ids, (B,) CPU int64 lengths -> outputs (B, S, 2H), final (B, 2H)."""
        embedded = self.dropout(self.embedding(source))
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        outputs, h_n = self.rnn(packed)
        outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=source.shape[1])
        return outputs, h_n.permute(1, 0, 2).reshape(source.shape[0], -1)


class Bridge(nn.Module):
    def __init__(self, in_features, hidden_size):
        super().__init__()
        self.linear = nn.Linear(in_features, hidden_size)

    def forward(self, final):
        return torch.tanh(self.linear(final))


class AdditiveAttention(nn.Module):
    def __init__(self, query_size, key_size, hidden_size):
        super().__init__()
        self.query_layer = nn.Linear(query_size, hidden_size, bias=False)
        self.key_layer = nn.Linear(key_size, hidden_size, bias=False)
        self.energy_layer = nn.Linear(hidden_size, 1, bias=False)

    def forward(self, query, projected_keys, values, mask):
        """(B, H) query, (B, S, A) projected keys, (B, S, 2H) values, (B, S) bool -> context, weights."""
        energy = torch.tanh(self.query_layer(query).unsqueeze(1) + projected_keys)
        scores = self.energy_layer(energy).squeeze(2).masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        return torch.bmm(weights.unsqueeze(1), values).squeeze(1), weights


class Decoder(nn.Module):
    def __init__(self, vocab_size, embedding_size, hidden_size, dropout):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout)
        self.cells = nn.ModuleList([nn.GRUCell(embedding_size + hidden_size, hidden_size)])
        self.attention = AdditiveAttention(hidden_size, 2 * hidden_size, hidden_size)
        self.combine = nn.Linear(3 * hidden_size, hidden_size, bias=False)
        self.output = nn.Linear(hidden_size, vocab_size)

    def step(self, embedded, hidden, attentional, encoded):
        """One step: (B, E) embedded previous tokens -> attentional (B, H), hidden (B, H)."""
        hidden = self.cells[0](torch.cat([embedded, attentional], dim=1), hidden)
        context, _ = self.attention(hidden, encoded["keys"], encoded["outputs"], encoded["mask"])
        attentional = self.dropout(torch.tanh(self.combine(torch.cat([hidden, context], dim=1))))
        return attentional, hidden


class TwinSeq2Seq(nn.Module):
    """Bidirectional GRU encoder, bridge, GRU decoder with additive attention and input feeding."""

    def __init__(self, source_vocab_size, target_vocab_size, embedding_size=256, hidden_size=256, dropout=0.25):
        super().__init__()
        self.hidden_size = hidden_size
        self.encoder = Encoder(source_vocab_size, embedding_size, hidden_size, dropout)
        self.bridge = Bridge(2 * hidden_size, hidden_size)
        self.decoder = Decoder(target_vocab_size, embedding_size, hidden_size, dropout)

    def encode(self, source, lengths):
        """(B, S) ids on the device, (B,) CPU lengths -> what every decoder step reads."""
        outputs, final = self.encoder(source, lengths)
        positions = torch.arange(source.shape[1], device=source.device)
        mask = positions[None, :] < lengths.to(source.device)[:, None]
        return {"outputs": outputs, "mask": mask, "keys": self.decoder.attention.key_layer(outputs),
                "hidden": self.bridge(final),
                "attentional": outputs.new_zeros(source.shape[0], self.hidden_size)}

    def loss(self, source, lengths, target_in, target_out, label_smoothing):
        """Mean label-smoothed cross-entropy over the non-PAD tokens of ``target_out`` (B, T)."""
        encoded = self.encode(source, lengths)
        embedded = self.decoder.dropout(self.decoder.embedding(target_in))  # (B, T, E), one gather
        hidden, attentional = encoded["hidden"], encoded["attentional"]
        attentionals = []
        for t in range(target_in.shape[1]):
            attentional, hidden = self.decoder.step(embedded[:, t], hidden, attentional, encoded)
            attentionals.append(attentional)
        pre_output = torch.stack(attentionals, dim=1).reshape(-1, self.hidden_size)
        targets = target_out.reshape(-1)
        rows = torch.nonzero(targets != PAD).squeeze(1)  # host tensors: no device sync
        device = source.device
        logits = self.decoder.output(pre_output[rows.to(device)])
        return F.cross_entropy(logits, targets[rows].to(device), label_smoothing=label_smoothing)


@torch.no_grad()
def greedy_search(model, source, lengths, max_length_ratio=1.0, max_length_offset=1):
    """Batched greedy decoding: (B, S) ids, (B,) CPU lengths -> (B, steps) CPU tokens, (B,) log-probs.

    Sentence b may produce ``floor(ratio * length_b + offset)`` tokens (EOS included); a finished
    sentence gets PAD afterwards; the loop stops when every sentence is finished.
    """
    device = source.device
    encoded = model.encode(source, lengths)
    limits = torch.floor(max_length_ratio * lengths.double() + max_length_offset).long().clamp(min=1)
    limits_on_device = limits.to(device)
    hidden, attentional = encoded["hidden"], encoded["attentional"]
    previous = torch.full((source.shape[0],), BOS, dtype=torch.long, device=device)
    finished = torch.zeros(source.shape[0], dtype=torch.bool, device=device)
    scores = torch.zeros(source.shape[0], device=device)
    tokens = []
    for step in range(int(limits.max())):
        attentional, hidden = model.decoder.step(model.decoder.embedding(previous), hidden, attentional, encoded)
        log_probs = torch.log_softmax(model.decoder.output(attentional), dim=-1)
        log_probs[:, [PAD, BOS]] = float("-inf")
        best_log_prob, best = log_probs.max(dim=-1)
        best = best.masked_fill(finished, PAD)
        scores += best_log_prob.masked_fill(finished, 0.0)
        tokens.append(best)
        finished |= (best == EOS) | (step + 1 >= limits_on_device)
        if bool(finished.all()):
            break
        previous = best
    return torch.stack(tokens, dim=1).cpu(), scores.cpu()


@torch.no_grad()
def beam_search(model, source, lengths, beam_size, max_length_ratio=1.0, max_length_offset=1, alpha=1.0):
    """Batched beam search of width K: (B, S) ids, (B,) CPU lengths -> (B, steps) CPU tokens of the best.

    Every sentence keeps K rows; a finished row (EOS or the length limit) may only continue with
    PAD at no cost, so it keeps its score. The best of the K final rows by
    ``log_prob / ((5 + length) / 6) ** alpha`` is returned.
    """
    device, batch, K = source.device, source.shape[0], beam_size  # noqa: N806 - the K of the docstring
    encoded = model.encode(source, lengths)
    encoded = {name: value.repeat_interleave(K, dim=0) for name, value in encoded.items()}
    limits = torch.floor(max_length_ratio * lengths.double() + max_length_offset).long().clamp(min=1)
    limits_on_device = limits.repeat_interleave(K).to(device)
    hidden, attentional = encoded["hidden"], encoded["attentional"]
    previous = torch.full((batch * K,), BOS, dtype=torch.long, device=device)
    scores = torch.full((batch, K), float("-inf"), device=device)
    scores[:, 0] = 0.0  # the K rows start identical: only the first may expand
    finished = torch.zeros(batch * K, dtype=torch.bool, device=device)
    lengths_out = torch.zeros(batch * K, dtype=torch.long, device=device)
    history = torch.zeros(batch * K, 0, dtype=torch.long, device=device)
    first_row = (torch.arange(batch, device=device) * K)[:, None]
    for step in range(int(limits.max())):
        attentional, hidden = model.decoder.step(model.decoder.embedding(previous), hidden, attentional, encoded)
        log_probs = torch.log_softmax(model.decoder.output(attentional), dim=-1)
        log_probs[:, [PAD, BOS]] = float("-inf")
        log_probs[finished] = float("-inf")
        log_probs[finished, PAD] = 0.0
        vocab = log_probs.shape[1]
        candidates = (scores.reshape(-1, 1) + log_probs).reshape(batch, K * vocab)
        scores, best = candidates.topk(K, dim=1)
        rows = (first_row + torch.div(best, vocab, rounding_mode="floor")).reshape(-1)
        tokens = (best % vocab).reshape(-1)
        hidden, attentional = hidden[rows], attentional[rows]
        history = torch.cat([history[rows], tokens[:, None]], dim=1)
        lengths_out = lengths_out[rows] + (~finished[rows]).long()
        finished = finished[rows] | (tokens == EOS) | (step + 1 >= limits_on_device)
        if bool(finished.all()):
            break
        previous = tokens
    penalty = ((5.0 + lengths_out.reshape(batch, K).float()) / 6.0) ** alpha
    best = (scores / penalty).argmax(dim=1)
    return history[(first_row[:, 0] + best)].cpu()


def count_parameters(model) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


class Seq2SeqProblem:
    """The driver's batches and weights on the twin; timed methods mirror ``bench/seq2seq_speed.py``.

    Input npz: ``config`` (a JSON string: vocabulary sizes, embedding/hidden sizes, dropout,
    label_smoothing, lr, clip, max_length_ratio, max_length_offset, beam: K > 1 to time beam search
    too), ``weight.<name>`` for every
    entry of our ``state_dict``, and ``train_<i>_<part>`` / ``decode_<i>_<part>`` with parts
    ``source (B, S)``, ``lengths (B,)``, ``target_in``, ``target_out (B, T)`` (decode: the first two).
    """

    def __init__(self, data, device="cpu"):
        self.device = torch.device(device)
        self.config = json.loads(str(data["config"]))
        c = self.config
        weights = {key[len("weight."):]: torch.from_numpy(value) for key, value in data.items()
                   if key.startswith("weight.")}

        def make_model():
            model = TwinSeq2Seq(c["source_vocab_size"], c["target_vocab_size"], c["embedding_size"],
                                c["hidden_size"], c["dropout"])
            model.load_state_dict(weights)  # strict: the same names and shapes as ours, or an error
            return model.to(self.device)

        self.model = make_model()
        # Decoding uses its own copy, never trained, with EOS made impossible (bias -1e4): every
        # sentence then runs to its length limit, so both sides decode the same number of tokens.
        self.decode_model = make_model().eval()
        with torch.no_grad():
            self.decode_model.decoder.output.bias[EOS] = -1e4
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=c["lr"])
        self.train_batches = self._batches(data, "train", 4)
        self.decode_batches = self._batches(data, "decode", 2)
        self.timed = TIMED + (("beam",) if c.get("beam", 0) > 1 else ())

    @staticmethod
    def _batches(data, kind, parts):
        batches, index = [], 0
        while f"{kind}_{index}_source" in data:
            names = ("source", "lengths", "target_in", "target_out")[:parts]
            batches.append([torch.from_numpy(np.asarray(data[f"{kind}_{index}_{name}"], dtype=np.int64))
                            for name in names])
            index += 1
        return batches

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _train_step(self, source, lengths, target_in, target_out):
        self.optimizer.zero_grad()
        loss = self.model.loss(source.to(self.device), lengths, target_in.to(self.device), target_out,
                               self.config["label_smoothing"])
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.config["clip"])
        self.optimizer.step()
        return loss

    def train(self):
        """One training step per batch (forward, backward, clip, Adam)."""
        self.model.train()
        for batch in self.train_batches:
            self._train_step(*batch)
        self.sync()

    def _greedy(self, source, lengths):
        return greedy_search(self.decode_model, source.to(self.device), lengths,
                             self.config["max_length_ratio"], self.config["max_length_offset"])

    def greedy(self):
        """Greedy decoding of every decode batch (the copies back to the host end each batch)."""
        for source, lengths in self.decode_batches:
            self._greedy(source, lengths)
        self.sync()

    def beam(self):
        """Beam search (width ``config["beam"]``) of every decode batch."""
        for source, lengths in self.decode_batches:
            beam_search(self.decode_model, source.to(self.device), lengths, self.config["beam"],
                        self.config["max_length_ratio"], self.config["max_length_offset"])
        self.sync()

    def warm_up(self):
        self.time(1)

    def time(self, repeats, clock=time.perf_counter):
        return time_methods(self, self.timed, repeats, clock)

    def results(self):
        """Eval-mode loss and gradient norm on the first training batch, greedy (and beam) tokens of the first decode batch.

        Call before training (``train`` changes the weights); leaves the weights unchanged.
        """
        source, lengths, target_in, target_out = self.train_batches[0]
        self.model.eval()
        self.optimizer.zero_grad()
        loss = self.model.loss(source.to(self.device), lengths, target_in.to(self.device), target_out,
                               self.config["label_smoothing"])
        loss.backward()
        grad_norm = torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(p.grad) for p in self.model.parameters() if p.grad is not None]))
        self.optimizer.zero_grad()
        tokens, scores = self._greedy(*self.decode_batches[0])
        results = {"loss": np.float64(loss.item()), "grad_norm": np.float64(grad_norm.item()),
                   "greedy_tokens": tokens.numpy(), "greedy_log_probs": scores.numpy(),
                   "parameters": np.int64(count_parameters(self.model))}
        if "beam" in self.timed:
            source, lengths = self.decode_batches[0]
            results["beam_tokens"] = beam_search(self.decode_model, source.to(self.device), lengths,
                                                 self.config["beam"], self.config["max_length_ratio"],
                                                 self.config["max_length_offset"]).numpy()
        return results

    def memory(self):
        """Peak bytes one training step allocates on the GPU over what was allocated before it; None on the CPU."""
        if self.device.type != "cuda":
            return None
        self.sync()
        baseline = torch.cuda.memory_allocated(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        self.model.train()
        self._train_step(*self.train_batches[0])
        self.sync()
        return torch.cuda.max_memory_allocated(self.device) - baseline
