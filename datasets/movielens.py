"""MovieLens (GroupLens): 100K, latest-small, 1M, 25M and 32M.

Each loader reads a folder laid out exactly like the official archive (``--data-dir``), or,
without one, downloads the official archive into the cache with its pinned checksum.
Harper & Konstan (2015), "The MovieLens Datasets: History and Context", ACM TiiS 5(4):19.
The data may not be redistributed: embedlab never ships it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from embedlab import hookimpl
from embedlab.data import (
    TIME_CUT_SPLITS,
    Dataset,
    DatasetSpec,
    check_ratings,
    require_dir,
    require_file,
    split_collab,
    time_cut_option,
)
from embedlab.errors import DataError
from embedlab.io.download import Archive

ML100K_SPLITS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
ML100K_GENRES = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]
RATING_COLUMNS = ["user", "item", "rating", "timestamp"]

# Checksums: the MD5 values are the ones GroupLens publishes beside each archive
# (https://files.grouplens.org/datasets/movielens/<name>.zip.md5); the SHA-256 values are from
# TensorFlow Datasets' pinned checksum list. Neither was recomputed here (no network when this
# table was written): a wrong value makes fetch() refuse the download, never accept bad data.
_TFDS = "tensorflow/datasets: tensorflow_datasets/url_checksums/movielens.txt"
_GROUPLENS = "https://files.grouplens.org/datasets/movielens"

MOVIELENS_ARCHIVES: dict[str, Archive] = {
    "movielens-100k": Archive(
        url=f"{_GROUPLENS}/ml-100k.zip",
        filename="ml-100k.zip",
        md5="0e33842e24a9c977be4e0107933c0723",
        sha256="50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
        size_bound=256 * 1024**2,
        source=(
            f"md5: GroupLens {_GROUPLENS}/ml-100k.zip.md5, as quoted in "
            "eli-osherovich/papers_with_code datasets/movielens/dl_config.py and other pins; "
            f"sha256 (4,924,029 bytes): {_TFDS}"
        ),
    ),
    "movielens-latest-small": Archive(
        url=f"{_GROUPLENS}/ml-latest-small.zip",
        filename="ml-latest-small.zip",
        md5=None,
        sha256="696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
        size_bound=256 * 1024**2,
        source=(
            f"sha256 (978,202 bytes; the edition generated 2018-09-26): {_TFDS}; "
            "no published md5 value found. ml-latest-small is a rolling release: GroupLens "
            "may replace it with a new edition whose checksum differs, and fetch() then "
            "refuses it (download it yourself and use --data-dir)"
        ),
    ),
    "movielens-1m": Archive(
        url=f"{_GROUPLENS}/ml-1m.zip",
        filename="ml-1m.zip",
        md5="c4d9eecfca2ab87c1945afe126590906",
        sha256="a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
        size_bound=256 * 1024**2,
        source=(
            f"md5: GroupLens {_GROUPLENS}/ml-1m.zip.md5, as quoted in "
            "eli-osherovich/papers_with_code datasets/movielens/dl_config.py and other pins; "
            f"sha256 (5,917,549 bytes): {_TFDS}"
        ),
    ),
    "movielens-25m": Archive(
        url=f"{_GROUPLENS}/ml-25m.zip",
        filename="ml-25m.zip",
        md5="6b51fb2759a8657d3bfcbfc42b592ada",
        sha256="8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
        size_bound=2 * 1024**3,
        source=(
            f"md5: GroupLens {_GROUPLENS}/ml-25m.zip.md5, as quoted in "
            "eli-osherovich/papers_with_code datasets/movielens/dl_config.py and other pins; "
            f"sha256 (261,978,986 bytes): {_TFDS}"
        ),
    ),
    "movielens-32m": Archive(
        url=f"{_GROUPLENS}/ml-32m.zip",
        filename="ml-32m.zip",
        md5="d472be332d4daa821edc399621853b57",
        sha256=None,
        size_bound=2 * 1024**3,
        source=(
            f"md5: GroupLens {_GROUPLENS}/ml-32m.zip.md5, as quoted by several independent "
            "public repositories (e.g. pooch known_hash='md5:d472be33...' in MovieLens 32M "
            "loaders; 238,950,008 bytes); no sha256 found"
        ),
    ),
}

#: The folder each MovieLens archive extracts to (the ``subdir`` for :func:`ensure_dataset`).
MOVIELENS_SUBDIRS: dict[str, str] = {
    "movielens-100k": "ml-100k",
    "movielens-latest-small": "ml-latest-small",
    "movielens-1m": "ml-1m",
    "movielens-25m": "ml-25m",
    "movielens-32m": "ml-32m",
}


def _options(canonical: tuple[str, ...], default_split: str, subdir: str) -> list[click.Option]:
    choices = list(canonical) + ["random", "time", *TIME_CUT_SPLITS]
    return [
        click.Option(
            ["--data-dir"],
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help=f"Folder laid out like the official archive, or the folder holding {subdir}/ "
            f"(default: EMBEDLAB_DATA_DIR when it holds {subdir}/); without either the archive "
            "is downloaded into the cache (checksum verified).",
        ),
        click.Option(
            ["--split"],
            type=click.Choice(choices),
            default=default_split,
            show_default=True,
            help="Validation split: the dataset's canonical split"
            + (f" ({', '.join(canonical)})" if canonical else "")
            + ", 'random' (--valid-pct, --seed), 'time' (the latest --valid-pct of ratings), "
            "or 'time-before' / 'time-after' (the ratings before / after --time-cut, each with "
            "its latest --valid-pct held out: pretrain on one, fine-tune on the other).",
        ),
        click.Option(
            ["--valid-pct"],
            type=float,
            default=0.1,
            show_default=True,
            help="Share of ratings held out by the random and time splits.",
        ),
        time_cut_option(),
    ]


def _folder(name: str, data_dir: Path | None) -> Path:
    if data_dir is not None:
        return require_dir(data_dir, name)
    from embedlab.io.download import ensure_dataset

    return ensure_dataset(MOVIELENS_ARCHIVES[name], MOVIELENS_SUBDIRS[name])


def _read_table(
    path: Path, sep: str, names: list[str], encoding: str = "utf-8", dtype: dict | None = None
) -> pd.DataFrame:
    """Read a headerless delimited file, checking its field count."""
    try:
        df = pd.read_csv(
            path,
            sep=sep,
            header=None,
            engine="c" if len(sep) == 1 else "python",
            encoding=encoding,
            dtype=dtype if dtype else None,
            quoting=3,
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path}: cannot be parsed ({str(exc).splitlines()[0]})") from None
    if df.shape[1] != len(names):
        raise DataError(
            f"{path}: expected {len(names)} {sep!r}-separated fields ({', '.join(names)}), found {df.shape[1]}"
        )
    df.columns = names
    return df


def _int_ids(df: pd.DataFrame, cols: list[str], source: Path) -> pd.DataFrame:
    for col in cols:
        values = pd.to_numeric(df[col], errors="coerce")
        bad_mask = values.isna() | (values != values.round())
        if bad_mask.any():
            bad = df[col][bad_mask].tolist()[0]
            raise DataError(
                f"{source}: column {col!r} has a non-integer id {bad!r} "
                f"(row {int(np.flatnonzero(bad_mask.to_numpy())[0]) + 1})"
            )
        df[col] = values.astype(np.int32)
    return df


def _read_ratings_tsv(path: Path) -> pd.DataFrame:
    df = _read_table(path, "\t", RATING_COLUMNS)
    df = _int_ids(df, ["user", "item"], path)
    df["rating"] = check_ratings(df, "rating", str(path), (1, 5))
    ts = pd.to_numeric(df["timestamp"], errors="coerce")
    if ts.isna().any():
        row = int(np.flatnonzero(ts.isna().to_numpy())[0]) + 1
        raise DataError(
            f"{path}: line {row} has no valid timestamp {df['timestamp'].tolist()[row - 1]!r}; "
            f"each line needs 4 tab-separated fields ({', '.join(RATING_COLUMNS)})"
        )
    df["timestamp"] = ts.astype(np.int64)
    return df


def _year_from_title(titles: pd.Series) -> pd.Series:
    return pd.to_numeric(titles.str.extract(r"\((\d{4})\)\s*$", expand=False), errors="coerce")


def _primary_genre(genres: pd.Series) -> pd.Series:
    return genres.fillna("").str.split("|").str[0].replace("", "unknown")


def _zip_region(zips: pd.Series) -> pd.Series:
    """The first digit of a US ZIP code; ``other`` for codes that start with a letter (Canada)."""
    first = zips.astype(str).str.strip().str[0]
    return first.where(first.str.isdigit(), "other")


def _age_bucket(age: pd.Series) -> pd.Series:
    """Five-year age buckets named by their first year (20 = 20-24), ordered as numbers."""
    return (pd.to_numeric(age, errors="coerce") // 5 * 5).astype("Int64")


def _year_bucket(year: pd.Series) -> pd.Series:
    """Release year for the 1990s (most films), the decade before that (1970 = 1970-79)."""
    year = pd.to_numeric(year, errors="coerce")
    return year.where(year >= 1990, year // 10 * 10).astype("Int64")


#: the side columns of each role (Dataset.side_features), where the entity table has them
SIDE_FEATURES = {
    "user": {"age_bucket": "ordinal", "gender": "category", "occupation": "category", "zip_region": "category"},
    "item": {"year_bucket": "ordinal", "genres": "multi"},
}


def _side_features(entities: dict) -> dict[str, dict[str, str]]:
    return {
        role: {c: kind for c, kind in cols.items() if c in entities[role]}
        for role, cols in SIDE_FEATURES.items()
        if role in entities
    }


def _finish(
    ds_name: str,
    ratings: pd.DataFrame,
    split: str,
    valid_pct: float,
    seed: int,
    canonical: dict[str, tuple[pd.DataFrame, pd.DataFrame]] | None,
    entities: dict,
    bounds: tuple[float, float],
    folder: Path,
    time_cut: Any = 0.5,
) -> Dataset:
    if canonical is not None and split in canonical:
        train, valid = canonical[split]
        split_info = {"name": split, "canonical": True}
    else:
        train, valid, split_info = split_collab(ratings, split, valid_pct, seed, "timestamp", time_cut)
    return Dataset(
        name=ds_name,
        kind="collab",
        train=train,
        valid=valid,
        roles={"user": "user", "item": "item", "rating": "rating", "timestamp": "timestamp"},
        entities=entities,
        split=split_info,
        rating_range=bounds,
        side_features=_side_features(entities),
        info={
            "folder": str(folder),
            "n_ratings": int(len(ratings)),
            "n_users": int(ratings["user"].nunique()),
            "n_items": int(ratings["item"].nunique()),
        },
    )


# ---------------------------------------------------------------- 100K


def load_ml100k(
    data_dir: Path | None = None,
    split: str = "u1",
    valid_pct: float = 0.1,
    seed: int = 42,
    time_cut: Any = 0.5,
    **_: Any,
) -> Dataset:
    name = "movielens-100k"
    folder = _folder(name, data_dir)
    ratings = _read_ratings_tsv(require_file(folder, "u.data", name))
    item_path = require_file(folder, "u.item", name)
    items = _read_table(
        item_path,
        "|",
        ["item", "title", "release_date", "video_release_date", "url"] + ML100K_GENRES,
        encoding="latin-1",
    )
    items = _int_ids(items, ["item"], item_path).set_index("item")
    flags = items[ML100K_GENRES].fillna(0).astype(int).to_numpy(dtype=bool)
    genres = ["|".join(g for g, f in zip(ML100K_GENRES, row) if f) or "unknown" for row in flags]
    release = pd.to_datetime(items["release_date"], format="%d-%b-%Y", errors="coerce")
    year = _year_from_title(items["title"].astype(str)).fillna(release.dt.year)
    item_meta = pd.DataFrame(
        {
            "label": items["title"].astype(str),
            "year": year,
            "genres": genres,
            "genre": _primary_genre(pd.Series(genres, index=items.index)),
            "release_date": release.dt.strftime("%Y-%m-%d"),
            "year_bucket": _year_bucket(year),
        },
        index=items.index,
    )
    item_meta.attrs["color_column"] = "genre"
    entities = {"item": item_meta}
    user_path = folder / "u.user"
    if user_path.is_file():
        users = _read_table(user_path, "|", ["user", "age", "gender", "occupation", "zip"])
        users = _int_ids(users, ["user"], user_path).set_index("user")
        entities["user"] = pd.DataFrame(
            {
                "label": "user " + users.index.astype(str),
                "age": users["age"],
                "gender": users["gender"],
                "occupation": users["occupation"],
                "age_bucket": _age_bucket(users["age"]),
                "zip_region": _zip_region(users["zip"]),
            },
            index=users.index,
        )
    canonical = None
    if split in ML100K_SPLITS:
        canonical = {
            split: (
                _read_ratings_tsv(require_file(folder, f"{split}.base", name)),
                _read_ratings_tsv(require_file(folder, f"{split}.test", name)),
            )
        }
    return _finish(name, ratings, split, valid_pct, seed, canonical, entities, (1.0, 5.0), folder, time_cut)


# ---------------------------------------------------------------- CSV editions (latest-small, 25M, 32M)


def _read_ratings_csv(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(
            path, dtype={"userId": "int32", "movieId": "int32", "rating": "float32", "timestamp": "int64"}, engine="c"
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except ValueError as exc:
        # dtype failures: fall back to a tolerant read so the error can name the bad value
        df = pd.read_csv(path, dtype=str)
        from embedlab.data import require_columns

        require_columns(df, ["userId", "movieId", "rating", "timestamp"], str(path))
        _int_ids(df, ["userId", "movieId"], path)
        check_ratings(df, "rating", str(path), (0.5, 5.0))
        raise DataError(f"{path}: cannot be parsed ({str(exc).splitlines()[0]})") from None
    from embedlab.data import require_columns

    require_columns(df, ["userId", "movieId", "rating", "timestamp"], str(path))
    df = df.rename(columns={"userId": "user", "movieId": "item"})[RATING_COLUMNS]
    df["rating"] = check_ratings(df, "rating", str(path), (0.5, 5.0))
    return df


def _movies_csv(path: Path) -> pd.DataFrame:
    try:
        movies = pd.read_csv(path, dtype={"movieId": str, "title": str, "genres": str})
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path}: cannot be parsed ({str(exc).splitlines()[0]})") from None
    from embedlab.data import require_columns

    require_columns(movies, ["movieId", "title", "genres"], str(path))
    movies = _int_ids(movies, ["movieId"], path)
    movies = movies.set_index("movieId")
    genres = movies["genres"].replace("(no genres listed)", "unknown").fillna("unknown")
    meta = pd.DataFrame(
        {
            "label": movies["title"].astype(str),
            "year": _year_from_title(movies["title"].astype(str).str.strip()),
            "genres": genres,
            "genre": _primary_genre(genres),
        },
        index=movies.index.rename("item"),
    )
    meta["year_bucket"] = _year_bucket(meta["year"])
    meta.attrs["color_column"] = "genre"
    return meta


#: rows per chunk when a torchrun rank reads only its shard of ratings.csv
CSV_CHUNK = 2_000_000
CSV_DTYPES = {"userId": "int32", "movieId": "int32", "rating": "float32", "timestamp": "int64"}


def _ratings_csv_chunks(path: Path, chunksize: int | None = None):
    """``chunks(columns)`` for :func:`embedlab.data.read_sharded`: ratings.csv in order, in
    chunks with the final names and dtypes. A chunk that does not parse or check sends the
    whole file through :func:`_read_ratings_csv`, whose error names the row."""
    from embedlab.data import require_columns

    names = {"userId": "user", "movieId": "item", "rating": "rating", "timestamp": "timestamp"}
    back = {v: k for k, v in names.items()}

    def chunks(columns):
        usecols = list(CSV_DTYPES) if columns is None else [back[c] for c in columns]
        try:
            header = pd.read_csv(path, nrows=0)
            require_columns(header, list(CSV_DTYPES), str(path))
            reader = pd.read_csv(
                path,
                usecols=usecols,
                dtype={c: CSV_DTYPES[c] for c in usecols},
                engine="c",
                chunksize=chunksize or CSV_CHUNK,
            )
            for chunk in reader:
                chunk = chunk.rename(columns=names)[[names[c] for c in usecols]]
                if "rating" in chunk:
                    chunk["rating"] = check_ratings(chunk, "rating", str(path), (0.5, 5.0))
                yield chunk
        except pd.errors.EmptyDataError:
            raise DataError(f"{path}: the file is empty") from None
        except (ValueError, DataError) as exc:
            _read_ratings_csv(path)  # the whole-file read names the bad value and its row
            raise DataError(f"{path}: cannot be parsed ({str(exc).splitlines()[0]})") from None

    return chunks


def _csv_loader(name: str):
    def load(
        data_dir: Path | None = None,
        split: str = "random",
        valid_pct: float = 0.1,
        seed: int = 42,
        time_cut: Any = 0.5,
        shard: Any = None,
        **_: Any,
    ) -> Dataset:
        """With ``shard`` (torchrun ``--shard-data``) ratings.csv is read in chunks and only the
        validation rows and this rank's training shard are kept (embedlab.data.read_sharded)."""
        folder = _folder(name, data_dir)
        path = require_file(folder, "ratings.csv", name)
        entities = {"item": _movies_csv(require_file(folder, "movies.csv", name))}
        if shard is None:
            ratings = _read_ratings_csv(path)
            return _finish(name, ratings, split, valid_pct, seed, None, entities, (0.5, 5.0), folder, time_cut)
        from embedlab.data import read_sharded

        train, valid, split_info, shard_info = read_sharded(
            _ratings_csv_chunks(path), shard, split, valid_pct, seed, "timestamp", time_cut
        )
        return Dataset(
            name=name,
            kind="collab",
            train=train,
            valid=valid,
            roles={"user": "user", "item": "item", "rating": "rating", "timestamp": "timestamp"},
            entities=entities,
            split=split_info,
            rating_range=(0.5, 5.0),
            side_features=_side_features(entities),
            info={"folder": str(folder), "n_ratings": shard_info["rows"], "shard": shard_info},
        )

    return load


# ---------------------------------------------------------------- 1M


def load_ml1m(
    data_dir: Path | None = None,
    split: str = "random",
    valid_pct: float = 0.1,
    seed: int = 42,
    time_cut: Any = 0.5,
    **_: Any,
) -> Dataset:
    name = "movielens-1m"
    folder = _folder(name, data_dir)
    path = require_file(folder, "ratings.dat", name)
    ratings = _read_table(path, "::", RATING_COLUMNS)
    ratings = _int_ids(ratings, ["user", "item"], path)
    ratings["rating"] = check_ratings(ratings, "rating", str(path), (1, 5))
    entities = {}
    mpath = folder / "movies.dat"
    if mpath.is_file():
        movies = _read_table(mpath, "::", ["item", "title", "genres"], encoding="latin-1")
        movies = _int_ids(movies, ["item"], mpath).set_index("item")
        entities["item"] = pd.DataFrame(
            {
                "label": movies["title"].astype(str),
                "year": _year_from_title(movies["title"].astype(str)),
                "genres": movies["genres"],
                "genre": _primary_genre(movies["genres"]),
                "year_bucket": _year_bucket(_year_from_title(movies["title"].astype(str))),
            },
            index=movies.index,
        )
    upath = folder / "users.dat"
    if upath.is_file():
        users = _read_table(upath, "::", ["user", "gender", "age", "occupation", "zip"])
        users = _int_ids(users, ["user"], upath).set_index("user")
        # 1M's age is already a bucket (1: under 18, 18: 18-24, ... 56: 56+), occupation a code
        entities["user"] = pd.DataFrame(
            {
                "label": "user " + users.index.astype(str),
                "age": users["age"],
                "gender": users["gender"],
                "occupation": users["occupation"],
                "age_bucket": users["age"],
                "zip_region": _zip_region(users["zip"]),
            },
            index=users.index,
        )
    return _finish(name, ratings, split, valid_pct, seed, None, entities, (1.0, 5.0), folder, time_cut)


def _fetcher(name: str):
    def fetch() -> Path:
        return _folder(name, None)

    return fetch


#: the built-in trainer of every MovieLens dataset (a trainer installed later is used only with --trainer)
TRAINER = "collab"

SPECS = [
    DatasetSpec(
        "movielens-100k",
        "collab",
        "MovieLens 100K: 100,000 ratings (1-5) of 1,682 movies by 943 users, 1998; canonical splits u1-u5, ua, ub",
        load_ml100k,
        _options(ML100K_SPLITS, "u1", "ml-100k"),
        ML100K_SPLITS,
        _fetcher("movielens-100k"),
        "https://grouplens.org/datasets/movielens/100k/ (no redistribution)",
        trainer=TRAINER,
    ),
    DatasetSpec(
        "movielens-latest-small",
        "collab",
        "MovieLens latest-small: ~100,000 ratings (0.5-5) of ~9,700 movies by 610 users",
        _csv_loader("movielens-latest-small"),
        _options((), "random", "ml-latest-small"),
        (),
        _fetcher("movielens-latest-small"),
        "https://grouplens.org/datasets/movielens/latest/",
        trainer=TRAINER,
    ),
    DatasetSpec(
        "movielens-1m",
        "collab",
        "MovieLens 1M: 1,000,209 ratings (1-5) of ~3,900 movies by 6,040 users, 2003",
        load_ml1m,
        _options((), "random", "ml-1m"),
        (),
        _fetcher("movielens-1m"),
        "https://grouplens.org/datasets/movielens/1m/ (no redistribution)",
        trainer=TRAINER,
    ),
    DatasetSpec(
        "movielens-25m",
        "collab",
        "MovieLens 25M: 25,000,095 ratings (0.5-5) of 62,423 movies by 162,541 users, 2019",
        _csv_loader("movielens-25m"),
        _options((), "random", "ml-25m"),
        (),
        _fetcher("movielens-25m"),
        "https://grouplens.org/datasets/movielens/25m/ (no redistribution)",
        trainer=TRAINER,
    ),
    DatasetSpec(
        "movielens-32m",
        "collab",
        "MovieLens 32M: 32,000,204 ratings (0.5-5) of 87,585 movies by 200,948 users, 2023",
        _csv_loader("movielens-32m"),
        _options((), "random", "ml-32m"),
        (),
        _fetcher("movielens-32m"),
        "https://grouplens.org/datasets/movielens/32m/ (no redistribution)",
        trainer=TRAINER,
    ),
]

#: files a folder of each archive holds (how EMBEDLAB_DATA_DIR is recognised as that folder itself)
DATA_FILES = {"movielens-100k": ("u.data", "u.item"), "movielens-1m": ("ratings.dat",)}
for _spec in SPECS:
    _spec.data_subdir = MOVIELENS_SUBDIRS[_spec.name]
    _spec.data_files = DATA_FILES.get(_spec.name, ("ratings.csv",))


@hookimpl
def embedlab_register_datasets(register):
    for spec in SPECS:
        register(spec)
