"""Data sets of the model-quality benchmark: the claims file and two synthetic CSVs.

Each synthetic file looks like what people bring: a few percent positives, string
columns that carry part of the signal, a row id (the project flags and drops it), a
date column as text, and rows in random order (no counter). The numeric part comes
from :func:`trainables.synthetic.make_synthetic`; the string columns are drawn with
a fraud-dependent mix, so a model that ignores them leaves AUC-PR on the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

#: The real claims file (1,000 claims, ~25% fraud), read in place, never copied.
CLAIMS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "insurance_claims.csv"


@dataclass(frozen=True)
class QualityData:
    """One benchmark data set: a file, its target and a line saying what it is."""

    name: str
    path: Path
    target: str
    about: str


def claims() -> QualityData:
    return QualityData("claims", CLAIMS, "fraud_reported",
                       "insurance_claims.csv: 1,000 claims, 24.7% fraud, 19 string columns, "
                       "2 dates, a policy id")


def _mix(rng: np.random.Generator, y: np.ndarray, levels: list[str], lift: dict[int, float],
         noise: float = 0.0) -> np.ndarray:
    """A string column: levels drawn uniformly for legit rows; positives favour the ``lift``
    levels (index -> relative weight); ``noise`` of the positives are drawn like legit ones."""
    n = len(levels)
    base = np.full(n, 1.0 / n)
    fraud = base.copy()
    for i, w in lift.items():
        fraud[i] *= w
    fraud /= fraud.sum()
    out = rng.choice(n, len(y), p=base)
    pos = np.flatnonzero(y == 1)
    keep = pos[rng.random(pos.size) >= noise]
    out[keep] = rng.choice(n, keep.size, p=fraud)
    return np.asarray(levels, dtype=object)[out]


def _dates(rng: np.random.Generator, rows: int, start: str, days: int) -> pd.Series:
    seconds = rng.integers(0, days * 86_400, rows)
    return (pd.Timestamp(start) + pd.to_timedelta(seconds, unit="s")).strftime("%Y-%m-%d %H:%M:%S")


def make_cards(path: Path, rows: int = 15_000, fraud_rate: float = 0.02, seed: int = 1) -> QualityData:
    """Card payments: 10 numeric features, merchant category / country / device as strings."""
    rng = np.random.default_rng(seed)
    frame = make_synthetic_frame(rows, fraud_rate, 12, seed)
    y = frame.pop("Class").to_numpy()
    frame = frame.drop(columns="Time")
    categories = ["grocery", "fuel", "restaurants", "travel", "electronics", "gaming", "fashion",
                  "pharmacy", "utilities", "gift_cards", "jewelry", "online_services"]
    countries = ["US", "GB", "DE", "FR", "ES", "IT", "NL", "PL", "RO", "NG", "BR", "IN", "CN", "RU",
                 "MX", "CA", "AU", "JP", "TR", "UA"]
    frame["merchant_category"] = _mix(rng, y, categories, {4: 3.0, 5: 3.0, 9: 6.0, 10: 4.0}, noise=0.3)
    frame["country"] = _mix(rng, y, countries, {9: 5.0, 13: 4.0, 19: 3.0, 8: 2.0}, noise=0.4)
    frame["device"] = _mix(rng, y, ["mobile", "desktop", "pos_terminal"], {0: 1.5, 1: 2.0, 2: 0.3})
    frame.insert(0, "transaction_id", [f"tx{i:08d}" for i in rng.permutation(rows)])
    frame["transaction_date"] = _dates(rng, rows, "2024-01-01", 180)
    frame["is_fraud"] = y
    return _write(frame.sample(frac=1.0, random_state=seed), path, "cards", "is_fraud",
                  f"synthetic card payments: {rows:,} rows, {fraud_rate:.0%} fraud, 3 string columns "
                  "(12/20/3 levels), a date, a row id")


def make_merchants(path: Path, rows: int = 15_000, fraud_rate: float = 0.015, seed: int = 2) -> QualityData:
    """Online orders: fraud concentrated at a few of 400 merchants (a high-cardinality
    string), plus channel and a free-text-like email domain; weaker numeric signal."""
    rng = np.random.default_rng(seed)
    frame = make_synthetic_frame(rows, fraud_rate, 8, seed)
    y = frame.pop("Class").to_numpy()
    frame = frame.drop(columns="Time")
    merchants = [f"m{i:04d}" for i in range(400)]
    bad = {int(i): 25.0 for i in rng.choice(400, 12, replace=False)}
    frame["merchant"] = _mix(rng, y, merchants, bad, noise=0.5)
    frame["channel"] = _mix(rng, y, ["web", "app", "phone", "partner"], {0: 2.0, 3: 3.0})
    domains = ["gmail.com", "yahoo.com", "outlook.com", "icloud.com", "mail.ru", "proton.me",
               "tempmail.net", "corp.example"]
    frame["email_domain"] = _mix(rng, y, domains, {5: 3.0, 6: 8.0}, noise=0.3)
    frame.insert(0, "order_id", [f"ord-{i:07d}" for i in rng.permutation(rows)])
    frame["order_date"] = _dates(rng, rows, "2023-06-01", 365)
    frame["signup_date"] = _dates(rng, rows, "2020-01-01", 1200)
    frame["label"] = y
    return _write(frame.sample(frac=1.0, random_state=seed), path, "merchants", "label",
                  f"synthetic online orders: {rows:,} rows, {fraud_rate:.0%} fraud, a 400-level "
                  "merchant string (12 compromised), 2 other strings, 2 dates, an order id")


def make_synthetic_frame(rows: int, fraud_rate: float, n_features: int, seed: int) -> pd.DataFrame:
    from trainables.synthetic import make_synthetic

    return make_synthetic(rows=rows, fraud_rate=fraud_rate, n_features=n_features, seed=seed)


def _write(frame: pd.DataFrame, path: Path, name: str, target: str, about: str) -> QualityData:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return QualityData(name, path, target, about)


def quality_sets(folder: Path, quick: bool = False, rows: int = 15_000) -> list[QualityData]:
    """The benchmark's data sets; ``quick``: the claims file only."""
    if quick:
        return [claims()]
    return [claims(), make_cards(folder / "cards.csv", rows=rows),
            make_merchants(folder / "merchants.csv", rows=rows)]
