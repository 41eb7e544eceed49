"""Which photos ``tir restore`` reads and where their results go (checked before any work)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


def restore_jobs(
    images: Sequence[str], output: str | None, overwrite: bool, skip_existing: bool = False
) -> list[tuple[Path, Path]]:
    """``(photo, output file)`` for each photo named by ``images`` (files or folders).

    A single file (:func:`one_file`) writes to ``output`` (default ``restored.png``); several
    photos, or a folder, to ``output`` as a folder (default ``restored``), ``NAME.png`` each.
    A photo named twice
    (or by a file and its folder) is restored once. With ``skip_existing`` a photo whose
    result exists is left out (said on stdout). Checked before any work.

    Raises:
        ImageReadError: an input does not exist, or a folder holds no photo.
        OutputPathError: an output path :func:`~tir_env.images.check_output_path` refuses,
            two photos of the same name, or an output folder that is a file or is named
            like one.
        OutputExistsError: an output exists (without ``overwrite`` or ``skip_existing``) or
            is an input.
    """
    from tir_env.images import check_output_path

    photos = find_photos(images)
    if one_file(images):
        target = one_output(output, photos[0])
        if skip_existing and target.is_file():
            print(f"{target} exists, skipped (--skip-existing)")
            return []
        return [(photos[0], check_output_path(target, overwrite, inputs=photos))]
    return folder_jobs(photos, output_folder(output), overwrite, skip_existing)


def one_output(output: str | None, photo: Path) -> Path:
    """The file one photo's result goes to: ``output`` (default ``restored.png``).

    Raises:
        OutputPathError: ``output`` is a folder (or ends with ``/``); the message suggests the
            photo's name in it.
    """
    from tir_env.errors import OutputPathError

    target = Path(output or "restored.png").expanduser()
    if output is not None and (target.is_dir() or output.endswith(("/", os.sep))):
        raise OutputPathError(
            f"output {output} is a folder; name a file, e.g. {target / f'{photo.stem}.png'}"
        )
    return target


def one_file(images: Sequence[str]) -> bool:
    """Whether ``images`` is one file (its result is a file), not several or a folder."""
    return len(images) == 1 and not Path(images[0]).expanduser().is_dir()


def find_photos(images: Sequence[str]) -> list[Path]:
    """The photo files ``images`` names: files as given, folders' photos sorted, no repeats.

    A folder's hidden files (``.name``: macOS' ``._`` resource files, an interrupted write's
    temporary file) are not photos.

    Raises:
        ImageReadError: an input does not exist, or a folder holds no photo.
    """
    from tir_env.errors import ImageReadError
    from tir_env.images import IMAGE_SUFFIXES

    photos: dict[Path, Path] = {}  # by resolved path: a photo named twice is restored once
    for name in images:
        path = Path(name).expanduser()
        if path.is_dir():
            found = sorted(
                p
                for p in path.iterdir()
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
            )
            if not found:
                raise ImageReadError(
                    f"folder {name} holds no photo ({', '.join(IMAGE_SUFFIXES)}); name files or "
                    "another folder"
                )
        elif path.exists():
            found = [path]
        else:
            raise ImageReadError(f"no such file or folder: {name}")
        for photo in found:
            photos.setdefault(photo.resolve(), photo)
    return list(photos.values())


def output_folder(output: str | None) -> Path:
    """The folder several results go to: ``output`` (default ``restored``).

    Raises:
        OutputPathError: it is a file, or named like one (``out.png``).
    """
    from tir_env.errors import OutputPathError
    from tir_env.images import IMAGE_SUFFIXES

    folder = Path(output or "restored").expanduser()
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(
            f"output {folder} is a file; with several photos -o names a folder (e.g. restored/)"
        )
    if not folder.exists() and folder.suffix.lower() in IMAGE_SUFFIXES:
        raise OutputPathError(
            f"output {folder} looks like a file name; with several photos -o names a folder, "
            f"each result NAME.png in it (e.g. -o {folder.with_suffix('')}/)"
        )
    return folder


def folder_jobs(
    photos: Sequence[Path], folder: Path, overwrite: bool, skip_existing: bool
) -> list[tuple[Path, Path]]:
    """``(photo, folder/NAME.png)`` for each photo, every output checked (see restore_jobs).

    Results that already exist are all named in one error, not one per run.
    """
    from tir_env.errors import OutputExistsError, OutputPathError
    from tir_env.images import check_output_path

    by_name: dict[str, Path] = {}
    jobs, existing = [], []
    for photo in photos:
        target = folder / f"{photo.stem}.png"
        key = target.name.casefold()  # one file on a case-insensitive disk (macOS, Windows)
        if key in by_name:
            raise OutputPathError(
                f"{by_name[key]} and {photo} would both be written to {target}; restore "
                "them in separate runs (each with its own -o)"
            )
        by_name[key] = photo
        if skip_existing and target.is_file():
            print(f"{target} exists, skipped (--skip-existing)")
            continue
        checked = check_output_path(target, overwrite=True, inputs=photos)  # never an input
        if checked.exists() and not overwrite:
            existing.append(target.name)
        else:
            jobs.append((photo, checked))
    if existing:
        raise OutputExistsError(
            f"{len(existing)} result(s) already exist in {folder}: {', '.join(existing)}; pass "
            "--skip-existing to restore only the others, or --overwrite to replace them"
        )
    return jobs


def before_after_path(output: Path) -> Path:
    """Where ``--before-after`` writes the side-by-side of the result ``output``."""
    return output.with_name(f"{output.stem}_before_after.png")


def check_before_after(jobs: Sequence[tuple[Path, Path]], images: Sequence[str]) -> None:
    """Refuse ``--before-after`` where a side-by-side would land on a photo or a result.

    Checked before any work, as the results are: a side-by-side is never written over an
    input photo (even with ``--overwrite``), another photo's result or another side-by-side
    (names compared case-insensitively, as some disks do).

    Raises:
        OutputExistsError: a side-by-side path is an input photo.
        OutputPathError: a side-by-side path is another job's result or side-by-side.
    """
    from tir_env.errors import OutputExistsError, OutputPathError
    from tir_env.images import check_output_path

    photos = find_photos(images)
    taken = {str(out.expanduser()).casefold(): out for _, out in jobs}
    for _, out in jobs:
        strip = before_after_path(out)
        try:  # an input photo is never written over, whatever --overwrite says
            check_output_path(strip, overwrite=True, inputs=photos)
        except OutputExistsError as err:
            raise OutputExistsError(f"--before-after: {err}") from err
        key = str(strip.expanduser()).casefold()
        if key in taken:
            raise OutputPathError(
                f"--before-after would write {strip}, which is also the result of another "
                f"photo ({taken[key]}); rename that photo or leave out --before-after"
            )
        taken[key] = strip
