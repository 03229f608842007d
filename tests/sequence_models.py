"""The issue's recurrent and Transformer models, written by hand exactly as issue 14 gives them: the truth the
examples lstm_lm and transformer_encoder, and training on the token data sets, are held against."""

from __future__ import annotations

import torch
from torch import nn


class LSTMLM(nn.Module):  # input (2, 35) of token ids < 28
    def __init__(self, vocab_size: int = 28, embed_size: int = 32, num_hiddens: int = 64) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = nn.LSTM(embed_size, num_hiddens, batch_first=True)
        self.linear = nn.Linear(num_hiddens, vocab_size)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.embedding(X))
        return self.linear(out)


class TinyTransformer(nn.Module):  # input (2, 16) of token ids < 100
    def __init__(
        self,
        vocab_size: int = 100,
        d_model: int = 32,
        nhead: int = 4,
        dim_ff: int = 64,
        num_layers: int = 2,
        num_classes: int = 2,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_ff, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embedding(X)).mean(dim=1))
