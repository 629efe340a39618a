"""Toy sequence-to-sequence tasks, generated in code: reversal, sorting, numbers to words.

Every task shares three special ids: ``PAD_ID = 0`` (right padding, left out of the loss and
masked as a key), ``BOS_ID = 1`` (starts every decoder input) and ``EOS_ID = 2`` (ends every
target). Content tokens start at id 3. Data are deterministic given ``seed``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from ._validate import check_int

__all__ = [
    "BOS_ID",
    "EOS_ID",
    "PAD_ID",
    "SHAPE_CLASSES",
    "Seq2SeqData",
    "iterate_batches",
    "make_number_words_data",
    "make_random_graph",
    "make_retrieval_data",
    "make_reversal_data",
    "make_sbm_graph",
    "make_shapes_data",
    "make_sorting_data",
    "remove_overlap",
    "to_text",
]

PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
SPECIALS = ("<pad>", "<bos>", "<eos>")
_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen \
fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
NUMBER_WORDS = (*_ONES, *_TENS, "hundred", "thousand")


@dataclass
class Seq2SeqData:
    """Examples of a toy task, right-padded with ``PAD_ID``; index or slice it for batches.

    Attributes:
        src: source ids, ``(N, S)``; no BOS or EOS.
        tgt_in: decoder input ``BOS y_1 .. y_n``, ``(N, T)`` (teacher forcing).
        tgt_out: what each decoder position must predict, ``y_1 .. y_n EOS``, ``(N, T)``.
        src_vocab: token string of each source id.
        tgt_vocab: token string of each target id.

    Introduced in chapter 06 (training a tiny Transformer).
    """

    src: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor
    src_vocab: tuple[str, ...]
    tgt_vocab: tuple[str, ...]

    def __len__(self) -> int:
        return self.src.shape[0]

    def __getitem__(self, index: int | slice | torch.Tensor) -> Seq2SeqData:
        """Select examples (always keeping the batch dim) and drop all-padding columns."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        src, tgt_in, tgt_out = self.src[index], self.tgt_in[index], self.tgt_out[index]
        S = int((src != PAD_ID).sum(1).max()) if len(src) else 0  # longest source
        T = int((tgt_out != PAD_ID).sum(1).max()) if len(src) else 0  # longest target
        return Seq2SeqData(
            src[:, :S], tgt_in[:, :T], tgt_out[:, :T], self.src_vocab, self.tgt_vocab
        )

    def to(self, device: torch.device | str) -> Seq2SeqData:
        """Return a copy whose tensors are on ``device``."""
        tensors = (t.to(device) for t in (self.src, self.tgt_in, self.tgt_out))
        return Seq2SeqData(*tensors, self.src_vocab, self.tgt_vocab)


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        check_int(name, value)


def _generator(seed: int) -> torch.Generator:
    check_int("seed", seed, minimum=0)
    return torch.Generator().manual_seed(seed)


def _targets(y: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Build ``BOS y`` and ``y EOS`` from right-padded ``y`` ``(N, L)`` -> two ``(N, L + 1)``."""
    N = y.shape[0]  # examples
    tgt_in = torch.cat([torch.full((N, 1), BOS_ID), y], dim=1)  # (N, L) -> (N, L + 1)
    tgt_out = torch.cat([y, torch.full((N, 1), PAD_ID)], dim=1)  # (N, L) -> (N, L + 1)
    tgt_out[torch.arange(N), lengths] = EOS_ID  # right after each target's last token
    return tgt_in, tgt_out


def _random_symbols(
    num_examples: int, min_len: int, max_len: int, num_symbols: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    _check_sizes(num_examples=num_examples, min_len=min_len, num_symbols=num_symbols)
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < min_len:
        raise ValueError(f"max_len must be an int >= min_len={min_len}, got {max_len!r}")
    gen = _generator(seed)
    lengths = torch.randint(min_len, max_len + 1, (num_examples,), generator=gen)  # (N,)
    ids = torch.randint(3, 3 + num_symbols, (num_examples, max_len), generator=gen)  # (N, L)
    real = torch.arange(max_len) < lengths[:, None]  # (L,) < (N, 1) -> (N, L)
    vocab = (*SPECIALS, *(str(i) for i in range(num_symbols)))
    return ids.masked_fill(~real, PAD_ID), lengths, vocab


def make_reversal_data(
    num_examples: int, *, min_len: int = 3, max_len: int = 8, num_symbols: int = 10, seed: int = 0
) -> Seq2SeqData:
    """Generate sequences of random symbols whose target is the same sequence reversed.

    Args:
        num_examples: number of examples ``N``.
        min_len: shortest sequence.
        max_len: longest sequence.
        num_symbols: distinct content tokens, shown as ``"0"``, ``"1"``, ... (ids 3, 4, ...).
        seed: seed of the ``torch.Generator`` that draws lengths and symbols.

    Returns:
        A ``Seq2SeqData``; source and target share one vocabulary.

    Shapes:
        -> src ``(N, max_len)``, tgt_in and tgt_out ``(N, max_len + 1)``.

    Introduced in chapter 06 (training a tiny Transformer).
    """
    src, lengths, vocab = _random_symbols(num_examples, min_len, max_len, num_symbols, seed)
    L = src.shape[1]  # padded length
    # position j of a row of length n takes source position n - 1 - j (pads stay pads)
    index = (lengths[:, None] - 1 - torch.arange(L)).clamp(min=0)  # (N, 1) - (L,) -> (N, L)
    y = src.gather(1, index).masked_fill(src == PAD_ID, PAD_ID)  # (N, L)
    return Seq2SeqData(src, *_targets(y, lengths), vocab, vocab)


def make_sorting_data(
    num_examples: int, *, min_len: int = 3, max_len: int = 8, num_symbols: int = 10, seed: int = 0
) -> Seq2SeqData:
    """Generate sequences of random symbols whose target is the sequence sorted ascending.

    Arguments, result and shapes are those of ``make_reversal_data``. Chapter 06.
    """
    src, lengths, vocab = _random_symbols(num_examples, min_len, max_len, num_symbols, seed)
    big = 3 + num_symbols  # larger than every symbol, so the pads sort to the end
    y = src.masked_fill(src == PAD_ID, big).sort(dim=1).values  # (N, L)
    y = y.masked_fill(y == big, PAD_ID)
    return Seq2SeqData(src, *_targets(y, lengths), vocab, vocab)


def number_to_words(n: int) -> list[str]:
    """Spell ``0 <= n < 10**6`` in English words: 342 -> three hundred forty two. Chapter 06."""
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        return [_TENS[n // 10 - 2]] + ([_ONES[n % 10]] if n % 10 else [])
    if n < 1000:
        return [_ONES[n // 100], "hundred"] + (number_to_words(n % 100) if n % 100 else [])
    rest = number_to_words(n % 1000) if n % 1000 else []
    return number_to_words(n // 1000) + ["thousand"] + rest


def _pad(rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(r) for r in rows])  # (N,)
    out = torch.full((len(rows), int(lengths.max())), PAD_ID)  # (N, L)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row)
    return out, lengths


def make_number_words_data(num_examples: int, *, max_digits: int = 3, seed: int = 0) -> Seq2SeqData:
    """Generate a digits-to-words "translation": ``3 4 2`` -> ``three hundred forty two``.

    Unlike reversal, source and target differ in vocabulary and length, and the alignment is
    not one-to-one (``1 5`` -> ``fifteen``; ``2 0 0`` -> ``two hundred``). The number of
    digits is uniform in ``1..max_digits``, then the number is uniform among those.

    Args:
        num_examples: number of examples ``N``.
        max_digits: most digits, at most 6.
        seed: seed of the ``torch.Generator`` that draws the numbers.

    Returns:
        A ``Seq2SeqData``; source vocabulary: specials + ``"0".."9"``; target vocabulary:
        specials + ``NUMBER_WORDS``.

    Shapes:
        -> src ``(N, S)``, tgt_in and tgt_out ``(N, T)`` (longest example + 1).

    Introduced in chapter 06 (training a tiny Transformer).
    """
    _check_sizes(num_examples=num_examples, max_digits=max_digits)
    if max_digits > 6:
        raise ValueError(
            f"max_digits must be at most 6 (numbers below a million), got {max_digits}"
        )
    gen = _generator(seed)
    digits = torch.randint(1, max_digits + 1, (num_examples,), generator=gen)  # (N,)
    low = torch.where(digits == 1, 0, 10 ** (digits - 1))  # smallest number with that many digits
    numbers = low + (torch.rand(num_examples, generator=gen, dtype=torch.float64) * (
        10**digits - low)).long()  # fmt: skip
    word_id = {w: 3 + i for i, w in enumerate(NUMBER_WORDS)}
    src, _ = _pad([[3 + int(c) for c in str(int(n))] for n in numbers])
    y, lengths = _pad([[word_id[w] for w in number_to_words(int(n))] for n in numbers])
    src_vocab = (*SPECIALS, *(str(i) for i in range(10)))
    return Seq2SeqData(src, *_targets(y, lengths), src_vocab, (*SPECIALS, *NUMBER_WORDS))


def remove_overlap(data: Seq2SeqData, seen: Seq2SeqData) -> Seq2SeqData:
    """Drop the examples of ``data`` whose source also occurs in ``seen``: a truly held-out set.

    Short sequences are few (1000 of length 3 over 10 symbols), so two independently drawn
    sets share some; accuracy on such shared examples would measure memory, not rules.

    Args:
        data: candidate held-out examples.
        seen: the training examples.

    Returns:
        The examples of ``data`` whose source is not in ``seen``, in their original order.

    Shapes:
        data ``(N, S)`` -> ``(N', S')`` with ``N' <= N``.

    Introduced in chapter 06 (training a tiny Transformer).
    """
    known = {tuple(r[r != PAD_ID].tolist()) for r in seen.src}
    keep = [i for i, r in enumerate(data.src) if tuple(r[r != PAD_ID].tolist()) not in known]
    return data[torch.tensor(keep, dtype=torch.long)]


def iterate_batches(
    data: Seq2SeqData, batch_size: int, *, seed: int = 0, shuffle: bool = True
) -> Iterator[Seq2SeqData]:
    """Yield batches forever, reshuffling each epoch; each batch is trimmed of all-pad columns.

    Args:
        data: the examples.
        batch_size: examples per batch (the last batch of an epoch may be smaller).
        seed: seed of the shuffling ``torch.Generator``.
        shuffle: whether to shuffle each epoch.

    Returns:
        An endless iterator of ``Seq2SeqData``.

    Shapes:
        -> src ``(b, S')``, tgt_in/tgt_out ``(b, T')``, ``b <= batch_size``.

    Introduced in chapter 06 (training a tiny Transformer).
    """
    _check_sizes(batch_size=batch_size)
    gen = _generator(seed)
    while True:
        order = torch.randperm(len(data), generator=gen) if shuffle else torch.arange(len(data))
        for start in range(0, len(data), batch_size):
            yield data[order[start : start + batch_size]]


def to_text(ids: torch.Tensor | Sequence[int], vocab: Sequence[str]) -> str:
    """Turn one sequence of ids into words, skipping PAD and BOS and stopping at EOS.

    Args:
        ids: the ids of one sequence.
        vocab: the token string of each id.

    Returns:
        The tokens joined by spaces.

    Shapes:
        ids ``(T,)`` -> str.

    Introduced in chapter 06 (training a tiny Transformer).
    """
    words = []
    for i in torch.as_tensor(ids).tolist():
        if i == EOS_ID:
            break
        if i not in (PAD_ID, BOS_ID):
            words.append(vocab[i])
    return " ".join(words)


# ---------------------------------------------------------------- chapters 13 and 14

SHAPE_CLASSES = ("square", "disc", "plus", "cross")


def make_shapes_data(
    num_images: int,
    *,
    image_size: int = 24,
    min_size: int = 8,
    max_size: int = 12,
    noise: float = 0.3,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw RGB images of one shape on noise; the class is the shape (``SHAPE_CLASSES``).

    Each image is Gaussian noise of standard deviation ``noise`` with one shape painted on it:
    a hollow square, a disc, a plus or a diagonal cross, ``min_size`` to ``max_size`` pixels
    wide, at a random place, in a random colour (each channel ±0.6 to ±1). Strokes are about
    two pixels wide. Data are deterministic given ``seed``.

    Args:
        num_images: ``N``.
        image_size: the side ``S`` of the square images (keyword only).
        min_size, max_size: the range of the shapes' sides, in pixels (keyword only).
        noise: the background noise's standard deviation (keyword only).
        seed: seed of the ``torch.Generator`` (keyword only).

    Returns:
        ``(images, labels, masks)``: float32 images, channels first; class ids; and the pixels
        the shape covers.

    Shapes:
        -> images ``(N, 3, S, S)``, labels ``(N,)``, masks ``(N, S, S)`` (bool).

    Introduced in chapter 13 (vision transformers).
    """
    check_int("num_images", num_images)
    check_int("image_size", image_size)
    check_int("min_size", min_size, 3)
    check_int("max_size", max_size, min_size)
    check_int("seed", seed, 0)
    if max_size > image_size:
        raise ValueError(f"max_size={max_size} does not fit in image_size={image_size}")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    gen = torch.Generator().manual_seed(seed)
    S, n = image_size, num_images
    labels = torch.randint(0, len(SHAPE_CLASSES), (n,), generator=gen)
    side = torch.randint(min_size, max_size + 1, (n,), generator=gen).float()[:, None, None]
    top = (torch.rand(n, 1, 1, generator=gen) * (S - side + 1)).floor()  # (n, 1, 1)
    left = (torch.rand(n, 1, 1, generator=gen) * (S - side + 1)).floor()
    colours = 0.6 + 0.4 * torch.rand(n, 3, generator=gen)
    colours = colours * torch.where(torch.rand(n, 3, generator=gen) < 0.5, -1.0, 1.0)  # (n, 3)
    images = torch.randn(n, 3, S, S, generator=gen) * noise
    grid = torch.arange(S, dtype=torch.float32)
    y, x = grid[None, :, None] - top, grid[None, None, :] - left  # (n, S, 1), (n, 1, S)
    inside = (y >= 0) & (y < side) & (x >= 0) & (x < side)  # (n, S, S): the shape's box
    c = (side - 1) / 2  # the box's centre
    shapes = torch.stack(
        (
            (y < 2) | (y >= side - 2) | (x < 2) | (x >= side - 2),  # hollow square
            (y - c) ** 2 + (x - c) ** 2 <= (side / 2) ** 2,  # disc
            ((y - c).abs() < 1) | ((x - c).abs() < 1),  # plus
            ((y - x).abs() < 1) | ((y + x - (side - 1)).abs() < 1),  # diagonal cross
        )
    )  # (4, n, S, S)
    masks = inside & shapes[labels, torch.arange(n)]  # (n, S, S)
    images = torch.where(masks[:, None], colours[:, :, None, None], images)  # (n, 3, S, S)
    return images, labels, masks


def make_sbm_graph(
    num_nodes: int,
    *,
    num_classes: int = 4,
    avg_degree: float = 8.0,
    homophily: float = 0.8,
    num_features: int = 16,
    signal: float = 0.5,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw a stochastic block model graph with noisy node features and a class per node.

    Nodes are split evenly into ``num_classes`` classes. Each pair is joined independently,
    with a probability chosen so that a node has ``avg_degree`` neighbours on average, a
    share ``homophily`` of them in its own class. A node's features are its class centroid
    (drawn from N(0, I)) times ``signal`` plus N(0, I) noise: alone they identify the class
    poorly, the neighbourhood well.

    Args:
        num_nodes: ``N``; at least 2 per class.
        num_classes: ``C`` (keyword only).
        avg_degree: expected neighbours per node (keyword only).
        homophily: expected share of a node's edges inside its class, in ``[0, 1]`` (keyword only).
        num_features: ``F`` (keyword only).
        signal: scale of the class centroid in the features (keyword only).
        seed: seed of the ``torch.Generator`` (keyword only).

    Returns:
        ``(x, labels, adj)``: float32 features, class ids and the symmetric boolean adjacency
        without self-loops (True = may attend).

    Shapes:
        -> x ``(N, F)``, labels ``(N,)``, adj ``(N, N)``.

    Introduced in chapter 14 (graphs and attention families).
    """
    check_int("num_classes", num_classes)
    check_int("num_nodes", num_nodes, 2 * num_classes)
    check_int("num_features", num_features)
    check_int("seed", seed, 0)
    if not 0.0 <= homophily <= 1.0:
        raise ValueError(f"homophily must be in [0, 1], got {homophily!r}")
    per_class = num_nodes / num_classes
    p_in = homophily * avg_degree / (per_class - 1)
    p_out = (1 - homophily) * avg_degree / max(num_nodes - per_class, 1)
    if not (avg_degree > 0 and p_in <= 1 and p_out <= 1):
        raise ValueError(
            f"avg_degree={avg_degree!r} is not reachable with {num_nodes} nodes in "
            f"{num_classes} classes and homophily={homophily}"
        )
    gen = torch.Generator().manual_seed(seed)
    labels = (torch.arange(num_nodes) % num_classes)[torch.randperm(num_nodes, generator=gen)]
    same = labels[:, None] == labels[None, :]  # (N, N)
    prob = torch.where(same, p_in, p_out)  # (N, N)
    upper = (torch.rand(num_nodes, num_nodes, generator=gen) < prob).triu(1)  # i < j only
    adj = upper | upper.T  # symmetric, no self-loops
    centroids = torch.randn(num_classes, num_features, generator=gen)
    x = signal * centroids[labels] + torch.randn(num_nodes, num_features, generator=gen)
    return x, labels, adj


def make_random_graph(num_nodes: int, avg_degree: float, *, seed: int = 0) -> torch.Tensor:
    """Draw a sparse random undirected graph with about ``avg_degree`` neighbours per node.

    ``N * avg_degree / 2`` node pairs are drawn uniformly (self-pairs and repeats dropped), so
    the work is proportional to the edges, not to ``N²``: graphs of any size are cheap.

    Args:
        num_nodes: ``N``.
        avg_degree: the mean number of neighbours (slightly less after dropping repeats).
        seed: seed of the ``torch.Generator`` (keyword only).

    Returns:
        A sparse COO boolean adjacency, symmetric, without self-loops (True = may attend).

    Shapes:
        -> ``(N, N)``.

    Introduced in chapter 14 (graphs and attention families).
    """
    check_int("num_nodes", num_nodes, 2)
    check_int("seed", seed, 0)
    if not 0 < avg_degree < num_nodes:
        raise ValueError(f"avg_degree must be in (0, num_nodes={num_nodes}), got {avg_degree!r}")
    gen = torch.Generator().manual_seed(seed)
    pairs = int(num_nodes * avg_degree / 2)
    i, j = torch.randint(0, num_nodes, (2, pairs), generator=gen)
    i, j = i[i != j], j[i != j]  # no self-loops
    index = torch.cat((torch.stack((i, j)), torch.stack((j, i))), dim=1)  # both directions
    ones = torch.ones(index.shape[1], dtype=torch.bool)
    shape = (num_nodes, num_nodes)
    # coalesce() merges repeated pairs (summing bools is an OR)
    return torch.sparse_coo_tensor(index, ones, shape, check_invariants=False).coalesce()


def make_retrieval_data(
    num_examples: int,
    *,
    num_pairs: int = 16,
    num_keys: int = 32,
    num_values: int = 16,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Generate key-value retrieval sequences: ``num_pairs`` pairs, then a query for one key.

    Each of the first ``num_pairs`` tokens carries a key (distinct within a sequence) and a
    value; the last token carries one of those keys and the value id ``num_values`` ("none").
    The target is the value stored with the queried key. A token is two ids, embedded and
    summed by the model. Data are deterministic given ``seed``.

    Args:
        num_examples: ``N``.
        num_pairs: pairs per sequence, ``T = num_pairs + 1`` tokens (keyword only).
        num_keys: key vocabulary; at least ``num_pairs`` (keyword only).
        num_values: value vocabulary; the id ``num_values`` marks the query (keyword only).
        seed: seed of the ``torch.Generator`` (keyword only).

    Returns:
        ``(key_ids, value_ids, targets)``, all ``torch.long``.

    Shapes:
        -> key_ids ``(N, T)``, value_ids ``(N, T)``, targets ``(N,)``.

    Introduced in chapter 14 (graphs and attention families).
    """
    check_int("num_examples", num_examples)
    check_int("num_pairs", num_pairs)
    check_int("num_keys", num_keys, num_pairs)
    check_int("num_values", num_values, 2)
    check_int("seed", seed, 0)
    gen = torch.Generator().manual_seed(seed)
    rows = torch.arange(num_examples)
    keys = torch.rand(num_examples, num_keys, generator=gen).argsort(dim=1)[:, :num_pairs]
    values = torch.randint(0, num_values, (num_examples, num_pairs), generator=gen)
    pick = torch.randint(0, num_pairs, (num_examples,), generator=gen)  # the queried pair
    key_ids = torch.cat((keys, keys[rows, pick, None]), dim=1)  # (N, T)
    none = torch.full((num_examples, 1), num_values)
    value_ids = torch.cat((values, none), dim=1)  # (N, T)
    return key_ids, value_ids, values[rows, pick]
