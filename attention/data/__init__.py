"""Toy data generated in code, never downloaded: one module per kind.

``seq2seq`` (chapters 06-08: reversal, sorting, numbers to words, with PAD/BOS/EOS ids),
``sequences`` (recall at one distance, chapter 10, or several, chapter 04; key-value
retrieval, chapter 14),
``text`` (sentiment sentences with negation, chapter 12), ``images`` (coloured shapes,
chapter 13) and ``graphs`` (block models and random graphs,
chapter 14). Everything is re-exported here: ``from attention.data import make_shapes_data``.
"""

from .graphs import make_random_graph, make_sbm_graph
from .images import SHAPE_CLASSES, make_shapes_data
from .seq2seq import (
    BOS_ID,
    EOS_ID,
    NUMBER_WORDS,
    PAD_ID,
    SPECIALS,
    Seq2SeqData,
    iterate_batches,
    make_number_words_data,
    make_reversal_data,
    make_sorting_data,
    number_to_words,
    remove_overlap,
    to_text,
)
from .sequences import make_multi_recall_data, make_recall_data, make_retrieval_data
from .text import CLS_TOKEN, SENTIMENT_WORDS, ClassificationData, make_sentiment_data

__all__ = [
    "BOS_ID",
    "CLS_TOKEN",
    "ClassificationData",
    "EOS_ID",
    "NUMBER_WORDS",
    "PAD_ID",
    "SENTIMENT_WORDS",
    "SHAPE_CLASSES",
    "SPECIALS",
    "Seq2SeqData",
    "iterate_batches",
    "make_multi_recall_data",
    "make_number_words_data",
    "make_random_graph",
    "make_recall_data",
    "make_retrieval_data",
    "make_reversal_data",
    "make_sbm_graph",
    "make_sentiment_data",
    "make_shapes_data",
    "make_sorting_data",
    "number_to_words",
    "remove_overlap",
    "to_text",
]
