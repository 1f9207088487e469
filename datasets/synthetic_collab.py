"""``synthetic-collab``: ratings with planted truth, generated offline in seconds.

Each item belongs to one of ``--genres`` latent genres; each user likes some genres and
dislikes others; users and items have biases. A rating is::

    clip(3.5 + user_bias + item_bias + taste[user, genre[item]] + noise, 1, 5)

The planted ``true_bias`` and ``genre`` are kept as entity metadata, so tests and analyses
can check that training recovers them. Item popularity follows a Zipf law, as real
catalogues do, so rating counts vary widely.
"""

from __future__ import annotations

from typing import Any

import click
import numpy as np
import pandas as pd

from embedlab import hookimpl
from embedlab.data import TIME_CUT_SPLITS, Dataset, DatasetSpec, RowShard, read_sharded, split_collab, time_cut_option
from embedlab.errors import UsageError

OPTIONS = [
    click.Option(["--users"], type=click.IntRange(2), default=800, show_default=True, help="Number of users."),
    click.Option(["--items"], type=click.IntRange(2), default=500, show_default=True, help="Number of items."),
    click.Option(
        ["--ratings"],
        type=click.IntRange(10),
        default=60_000,
        show_default=True,
        help="Number of ratings (distinct user-item pairs are not enforced beyond chance).",
    ),
    click.Option(
        ["--genres"], type=click.IntRange(1, 50), default=4, show_default=True, help="Number of planted latent genres."
    ),
    click.Option(
        ["--noise"],
        type=click.FloatRange(0),
        default=0.5,
        show_default=True,
        help="Standard deviation of the rating noise.",
    ),
    click.Option(
        ["--taste"],
        type=click.FloatRange(0),
        default=0.8,
        show_default=True,
        help="Planted genre strength: standard deviation of each user's liking of each genre "
        "(in stars; 0: genres do not matter).",
    ),
    click.Option(
        ["--popularity"],
        type=click.FloatRange(0),
        default=0.8,
        show_default=True,
        help="Zipf exponent of item popularity (0: every item equally often rated).",
    ),
    click.Option(
        ["--split"],
        type=click.Choice(["random", "time", *TIME_CUT_SPLITS]),
        default="random",
        show_default=True,
        help="Validation split: random, time, or time-before / time-after (--time-cut).",
    ),
    click.Option(["--valid-pct"], type=float, default=0.1, show_default=True, help="Share held out."),
    time_cut_option(),
    click.Option(
        ["--shuffle-truth"],
        is_flag=True,
        help="Negative control: shuffle the planted genre and bias labels after generating.",
    ),
    click.Option(
        ["--readable-names"],
        is_flag=True,
        help="Name the planted genres (Space Opera, Film Noir, ...) and give every item a film "
        "title of its genre ('The Crimson Starship (1977)'; a repeated title becomes a sequel, "
        "II, III...) instead of 'item 12 (genre 2)'. The ratings are the same either way.",
    ),
]


#: --readable-names: the planted genres' names and the nouns of their titles (genres past these
#: are "Genre 13", ... with the last list's nouns)
GENRE_TITLES = [
    ("Space Opera", ["Starship", "Nebula", "Galaxy", "Comet", "Orbit", "Empire", "Moon", "Asteroid"]),
    ("Film Noir", ["Alibi", "Rain", "Shadow", "Detective", "Dame", "Cigarette", "Alley", "Verdict"]),
    ("Romantic Comedy", ["Wedding", "Kiss", "Valentine", "Honeymoon", "Bouquet", "Date", "Crush", "Proposal"]),
    ("Horror", ["Cellar", "Scream", "Coffin", "Curse", "Witch", "Fog", "Asylum", "Skull"]),
    ("Western", ["Saddle", "Canyon", "Sheriff", "Outlaw", "Frontier", "Stagecoach", "Gold", "Rifle"]),
    ("Musical", ["Melody", "Ballroom", "Serenade", "Chorus", "Waltz", "Broadway", "Tango", "Song"]),
    ("Heist Thriller", ["Vault", "Diamond", "Getaway", "Safecracker", "Casino", "Job", "Ransom", "Alarm"]),
    ("Animated Fable", ["Fox", "Dragon", "Kitten", "Teapot", "Forest", "Puppet", "Mouse", "Balloon"]),
    ("War Epic", ["Battalion", "Trench", "Siege", "Armada", "Bridge", "Flag", "Garrison", "Front"]),
    ("Courtroom Drama", ["Jury", "Witness", "Appeal", "Testimony", "Judge", "Defense", "Motion", "Oath"]),
    ("Martial Arts", ["Fist", "Temple", "Tiger", "Master", "Dojo", "Blade", "Monk", "Crane"]),
    ("Documentary", ["Ocean", "Glacier", "Desert", "River", "Volcano", "Reef", "Savanna", "Tundra"]),
]
TITLE_WORDS = [
    "Crimson",
    "Silent",
    "Last",
    "Distant",
    "Iron",
    "Hollow",
    "Burning",
    "Frozen",
    "Golden",
    "Midnight",
    "Broken",
    "Secret",
    "Wild",
    "Lonely",
    "Little",
    "Endless",
]
ROMAN = ["", " II", " III", " IV", " V", " VI", " VII", " VIII", " IX", " X"]


def genre_name(g: int) -> str:
    """The readable name of planted genre ``g`` (0-based)."""
    return GENRE_TITLES[g][0] if g < len(GENRE_TITLES) else f"Genre {g + 1}"


def apply_readable_names(user_meta: pd.DataFrame, item_meta: pd.DataFrame, item_genre: np.ndarray, seed: int) -> None:
    """Replace (in place) the planted genres' "genre g" by names and the items' "item k (genre
    g)" labels by film titles of their genre, drawn from their own seeded stream (the ratings'
    stream is untouched): "The Crimson Starship (1977)"; the second film of a title is its
    sequel, "The Crimson Starship II (1981)"."""
    rng = np.random.default_rng([seed, 1977])
    seen: dict[str, tuple[int, int]] = {}  # title -> (films so far, the first one's year)
    titles = []
    for g in item_genre:
        nouns = GENRE_TITLES[min(int(g), len(GENRE_TITLES) - 1)][1]
        base = f"The {TITLE_WORDS[rng.integers(len(TITLE_WORDS))]} {nouns[rng.integers(len(nouns))]}"
        year = int(rng.integers(1950, 1990))
        k, first = seen.get(base, (0, year))
        seen[base] = (k + 1, first)
        suffix = ROMAN[k] if k < len(ROMAN) else f" {k + 1}"
        titles.append(f"{base}{suffix} ({first + 3 * k})")  # a sequel follows its original
    item_meta["label"] = titles
    item_meta["genre"] = [genre_name(int(g)) for g in item_genre]
    user_meta["favourite_genre"] = [genre_name(int(str(v).rsplit(" ", 1)[-1])) for v in user_meta["favourite_genre"]]


#: rows drawn per chunk (bounds the float64 temporaries of numpy's samplers to ~32 MB)
CHUNK = 4_000_000


def _chunked(n: int, dtype, draw) -> np.ndarray:
    """``draw(k)`` called on chunks of at most CHUNK rows, stored as ``dtype``."""
    out = np.empty(n, dtype=dtype)
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        out[start:stop] = draw(stop - start)
    return out


def generate(
    users: int = 800,
    items: int = 500,
    ratings: int = 60_000,
    genres: int = 4,
    noise: float = 0.5,
    seed: int = 42,
    taste: float = 0.8,
    popularity: float = 0.8,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(ratings, user metadata, item metadata) with the planted truth in the metadata."""
    rng = np.random.default_rng(seed)
    item_genre = rng.integers(0, genres, size=items)
    item_bias = rng.normal(0.0, 0.5, size=items).astype(np.float32)
    user_bias = rng.normal(0.0, 0.3, size=users).astype(np.float32)
    tastes = (rng.normal(0.0, 1.0, size=(users, genres)) * taste).astype(np.float32)  # = normal(0, taste)
    zipf = popularity
    popularity = 1.0 / np.arange(1, items + 1) ** zipf
    popularity = popularity[rng.permutation(items)]
    popularity /= popularity.sum()
    activity = rng.lognormal(0.0, 0.7, size=users)
    activity /= activity.sum()
    # Memory-lean and vectorised: every column is drawn in chunks straight into its final
    # dtype (int32 ids and timestamps, float32 ratings), so 25M ratings peak near their own
    # 400 MB instead of several float64 temporaries. Chunked draws consume the generator's
    # stream in the same order as one big draw, so small sets are unchanged.
    u = _chunked(ratings, np.int32, lambda n: rng.choice(users, size=n, p=activity))
    i = _chunked(ratings, np.int32, lambda n: rng.choice(items, size=n, p=popularity))
    genre_of = item_genre.astype(np.int32)
    r = np.empty(ratings, dtype=np.float32)
    for start in range(0, ratings, CHUNK):
        stop = min(start + CHUNK, ratings)
        uc, ic = u[start:stop], i[start:stop]
        rc = (
            3.5
            + user_bias[uc]
            + item_bias[ic]
            + tastes[uc, genre_of[ic]]
            + rng.normal(0, noise, size=stop - start).astype(np.float32)
        )
        r[start:stop] = np.clip(np.round(rc * 2) / 2, 1.0, 5.0)
    ts = _chunked(ratings, np.int32, lambda n: rng.integers(1_500_000_000, 1_600_000_000, size=n))
    ts.sort()
    u += 1
    i += 1
    frame = pd.DataFrame({"user": u, "item": i, "rating": r, "timestamp": ts}, copy=False)
    item_meta = pd.DataFrame(
        {
            "label": [f"item {k + 1} (genre {g})" for k, g in enumerate(item_genre)],
            "genre": [f"genre {g}" for g in item_genre],
            "true_bias": item_bias,
        },
        index=pd.Index(np.arange(1, items + 1, dtype=np.int64), name="item"),
    )
    item_meta.attrs["color_column"] = "genre"
    fav = tastes.argmax(1)
    user_meta = pd.DataFrame(
        {
            "label": [f"user {k + 1}" for k in range(users)],
            "true_bias": user_bias,
            "favourite_genre": [f"genre {g}" for g in fav],
        },
        index=pd.Index(np.arange(1, users + 1, dtype=np.int64), name="user"),
    )
    return frame, user_meta, item_meta


def load(
    users: int = 800,
    items: int = 500,
    ratings: int = 60_000,
    genres: int = 4,
    noise: float = 0.5,
    taste: float = 0.8,
    popularity: float = 0.8,
    split: str = "random",
    valid_pct: float = 0.1,
    seed: int = 42,
    shuffle_truth: bool = False,
    time_cut: Any = 0.5,
    shard: RowShard | None = None,
    readable_names: bool = False,
    **_: Any,
) -> Dataset:
    """The dataset; with ``shard`` (torchrun ``--shard-data``) only the validation rows and this
    rank's training shard are kept. Every rank still draws every row, in lean columns: the set
    is one seeded random stream, drawn in order, so a rank cannot draw just its rows (the
    full columns, 13 bytes a rating, live until the shard is cut; no DataFrame copy of the
    whole set is made)."""
    if genres > items:
        raise UsageError(f"--genres {genres} is more than --items {items}")
    frame, user_meta, item_meta = generate(users, items, ratings, genres, noise, seed, taste, popularity)
    if readable_names:
        planted = item_meta["genre"].str.rsplit(" ", n=1).str[-1].astype(int).to_numpy()  # "genre g"
        apply_readable_names(user_meta, item_meta, planted, seed)
    if shuffle_truth:
        rng = np.random.default_rng(seed + 1)
        for meta in (user_meta, item_meta):
            for col in meta.columns.drop("label"):
                meta[col] = meta[col].to_numpy()[rng.permutation(len(meta))]
    info = {}
    if shard is not None:
        whole = [frame]
        del frame  # read_sharded's chunks hold the only reference: dropped once the shard is cut
        train, valid, split_info, info["shard"] = read_sharded(
            lambda columns: whole if columns is None else [whole[0][columns]],
            shard,
            split,
            valid_pct,
            seed,
            "timestamp",
            time_cut,
        )
        whole.clear()
    else:
        train, valid, split_info = split_collab(frame, split, valid_pct, seed, "timestamp", time_cut)
    return Dataset(
        name="synthetic-collab",
        kind="collab",
        train=train,
        valid=valid,
        roles={"user": "user", "item": "item", "rating": "rating", "timestamp": "timestamp"},
        entities={"user": user_meta, "item": item_meta},
        split=split_info,
        rating_range=(1.0, 5.0),
        info={
            **info,
            "generator": {
                "users": users,
                "items": items,
                "ratings": ratings,
                "genres": genres,
                "noise": noise,
                "taste": taste,
                "popularity": popularity,
                "seed": seed,
                "shuffle_truth": shuffle_truth,
            },
        },
    )


@hookimpl
def embedlab_register_datasets(register):
    register(
        DatasetSpec(
            "synthetic-collab",
            "collab",
            "Generated ratings with planted biases and genres (offline, seconds)",
            load,
            OPTIONS,
            trainer="collab",
        )
    )
