"""Recurrent cells, one file each; all implement :class:`~src.cells.base.RecurrentCell`."""

from src.cells.base import RecurrentCell
from src.cells.brc import BRC
from src.cells.chrono import ChronoLSTM
from src.cells.gru import GRU
from src.cells.lstm import LSTM
from src.cells.mgu import MGU
from src.cells.nbrc import NBRC
from src.cells.rnn import RNN

__all__ = ["BRC", "GRU", "LSTM", "MGU", "NBRC", "RNN", "ChronoLSTM", "RecurrentCell"]
