"""The bundled photographs' allow-lists and where their files are, without importing torch.

:func:`prefstyle.data.photos.bundled_photos` builds its photo sources from these tables;
:func:`bundled_photo_paths` gives the same files in the same order to code that must not import
torch (the torch-free ``export-lut``). Keep docs/PHOTOS.md in step.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["DEBIAN_PACKAGES", "bundled_photo_entries", "bundled_photo_paths"]

# Paths are relative to the installed package's directory (Python packages) or to /usr/share
# (Debian packages).

# (id, python package, path inside it, author / credit, licence, API that returns the same image)
_PYTHON_PHOTOS: tuple[tuple[str, str, str, str, str, str], ...] = (
    (
        "skimage/astronaut",
        "skimage",
        "data/astronaut.png",
        "NASA (Eileen Collins)",
        "public domain",
        "skimage.data.astronaut()",
    ),
    ("skimage/chelsea", "skimage", "data/chelsea.png", "Stefan van der Walt", "CC0-1.0", "skimage.data.chelsea()"),
    (
        "skimage/coffee",
        "skimage",
        "data/coffee.png",
        "Rachel Michetti (Pikolo Espresso Bar)",
        "CC0-1.0",
        "skimage.data.coffee()",
    ),
    (
        "skimage/rocket",
        "skimage",
        "data/rocket.jpg",
        "SpaceX (DSCOVR launch on Falcon 9)",
        "public domain",
        "skimage.data.rocket()",
    ),
    (
        "skimage/motorcycle",
        "skimage",
        "data/motorcycle_left.png",
        "Middlebury 2014 stereo dataset (Scharstein et al.)",
        "redistributed in scikit-image (BSD-3-Clause); no separate image licence stated",
        "skimage.data.stereo_motorcycle()[0]",
    ),
    (
        "sklearn/china",
        "sklearn",
        "datasets/images/china.jpg",
        "danielbuechele (Flickr)",
        "CC-BY-2.0",
        "sklearn.datasets.load_sample_image('china.jpg')",
    ),
    (
        "sklearn/flower",
        "sklearn",
        "datasets/images/flower.jpg",
        "vultilion (Flickr)",
        "CC-BY-2.0",
        "sklearn.datasets.load_sample_image('flower.jpg')",
    ),
    (
        "matplotlib/grace_hopper",
        "matplotlib",
        "mpl-data/sample_data/grace_hopper.jpg",
        "U.S. Navy (official portrait of Grace M. Hopper)",
        "public domain",
        "matplotlib.cbook.get_sample_data('grace_hopper.jpg')",
    ),
)

# (id, Debian package, path under /usr/share, author, licence)
_MATE = "mate-backgrounds"
_MATE_LICENCE = "GPL-2+"
_LOMIRI = "lomiri-wallpapers-16.04"
_PLASMA = "plasma-workspace-wallpapers"
_PLASMA_LICENCE = "GPL-2+ (debian/copyright); LGPL-3 in the wallpaper's metadata.json"

_DEBIAN_PHOTOS: tuple[tuple[str, str, str, str, str], ...] = (
    ("mate/Aqua", _MATE, "backgrounds/mate/nature/Aqua.jpg", "Charles Barbin", _MATE_LICENCE),
    ("mate/Blinds", _MATE, "backgrounds/mate/nature/Blinds.jpg", "Lennart Poettering, Andrea Cimitan", _MATE_LICENCE),
    ("mate/Dune", _MATE, "backgrounds/mate/nature/Dune.jpg", "Marco Cogoni, Hylke Bons", _MATE_LICENCE),
    ("mate/FreshFlower", _MATE, "backgrounds/mate/nature/FreshFlower.jpg", "Jens Ansorg", _MATE_LICENCE),
    ("mate/Garden", _MATE, "backgrounds/mate/nature/Garden.jpg", "Charles Barbin", _MATE_LICENCE),
    (
        "mate/GreenMeadow",
        _MATE,
        "backgrounds/mate/nature/GreenMeadow.jpg",
        "Timothy Schellhase, Lapo Calamandrei",
        _MATE_LICENCE,
    ),
    ("mate/LadyBird", _MATE, "backgrounds/mate/nature/LadyBird.jpg", "Charles Barbin", _MATE_LICENCE),
    ("mate/RainDrops", _MATE, "backgrounds/mate/nature/RainDrops.jpg", "blackcombwhistler07", _MATE_LICENCE),
    ("mate/Storm", _MATE, "backgrounds/mate/nature/Storm.jpg", "Sergey Nazarov", _MATE_LICENCE),
    ("mate/TwoWings", _MATE, "backgrounds/mate/nature/TwoWings.jpg", "Charles Barbin, Hylke Bons", _MATE_LICENCE),
    ("mate/Wood", _MATE, "backgrounds/mate/nature/Wood.jpg", "Jean-François Fortin Tam", _MATE_LICENCE),
    ("mate/YellowFlower", _MATE, "backgrounds/mate/nature/YellowFlower.jpg", "Charles Barbin", _MATE_LICENCE),
    ("lomiri/Bridge", _LOMIRI, "backgrounds/Bridge_by_Sander_Klootwijk.jpg", "Sander Klootwijk", "CC-BY-SA-4.0"),
    ("lomiri/Dragonfly", _LOMIRI, "backgrounds/Dragonfly_by_Bolly.jpg", "Bolly", "CC-BY-SA-4.0"),
    ("lomiri/Picture_0B", _LOMIRI, "backgrounds/Picture_0B_by_freespace.jpg", 'Trevor "Freespace"', "CC-BY-4.0"),
    ("lomiri/Picture_1A", _LOMIRI, "backgrounds/Picture_1A_by_freespace.jpg", 'Trevor "Freespace"', "CC-BY-4.0"),
    ("lomiri/Wine", _LOMIRI, "backgrounds/Wine_by_Jakkub_Mede.jpg", "Jakub Mede", "CC-BY-4.0"),
    ("lomiri/aitzgorri", _LOMIRI, "backgrounds/aitzgorri_by_Aitzol_Berasategi.jpg", "Aitzol Berasategi", "CC-BY-4.0"),
    ("lomiri/free", _LOMIRI, "backgrounds/free_by_Peter_Nerlich.jpg", "Peter Nerlich", "CC-BY-SA-4.0"),
    ("lomiri/friends", _LOMIRI, "backgrounds/friends_by_Aitzol_Berasategi.jpg", "Aitzol Berasategi", "CC-BY-4.0"),
    ("lomiri/greentock", _LOMIRI, "backgrounds/greentock_by_Peter_Nerlich.jpg", "Peter Nerlich", "CC-BY-SA-4.0"),
    ("lomiri/life", _LOMIRI, "backgrounds/life_by_Aitzol_Berasategi.jpg", "Aitzol Berasategi", "CC-BY-4.0"),
    (
        "lomiri/picosdeeuropa",
        _LOMIRI,
        "backgrounds/picosdeeuropa_by_Aitzol_Berasategi.jpg",
        "Aitzol Berasategi",
        "CC-BY-4.0",
    ),
    ("lomiri/seeding", _LOMIRI, "backgrounds/seeding_by_Clements_Engelhardt.jpg", "Clemens Engelhardt", "CC0-1.0"),
    ("lomiri/sunset", _LOMIRI, "backgrounds/sunset_by_Aitzol_Berasategi.jpg", "Aitzol Berasategi", "CC-BY-4.0"),
    (
        "plasma/BytheWater",
        _PLASMA,
        "wallpapers/BytheWater/contents/images/2560x1600.jpg",
        "Maciej Wiklo",
        _PLASMA_LICENCE,
    ),
    (
        "plasma/ColorfulCups",
        _PLASMA,
        "wallpapers/ColorfulCups/contents/images/2560x1600.jpg",
        "Dmitri Popov",
        _PLASMA_LICENCE,
    ),
    (
        "plasma/DarkestHour",
        _PLASMA,
        "wallpapers/DarkestHour/contents/images/2560x1600.jpg",
        "Risto Saukonpää",
        _PLASMA_LICENCE,
    ),
    ("plasma/EveningGlow", _PLASMA, "wallpapers/EveningGlow/contents/images/2560x1600.jpg", "Ian Hex", _PLASMA_LICENCE),
    (
        "plasma/FallenLeaf",
        _PLASMA,
        "wallpapers/FallenLeaf/contents/images/2560x1600.jpg",
        "Martin Klapetek",
        _PLASMA_LICENCE,
    ),
    ("plasma/Kite", _PLASMA, "wallpapers/Kite/contents/images/2560x1600.jpg", "Risto Saukonpää", _PLASMA_LICENCE),
    (
        "plasma/OneStandsOut",
        _PLASMA,
        "wallpapers/OneStandsOut/contents/images/2560x1600.jpg",
        "Risto Saukonpää",
        _PLASMA_LICENCE,
    ),
    ("plasma/Path", _PLASMA, "wallpapers/Path/contents/images/2560x1600.jpg", "Risto Saukonpää", _PLASMA_LICENCE),
    (
        "plasma/summer_1am",
        _PLASMA,
        "wallpapers/summer_1am/contents/images/2560x1600.jpg",
        "Risto Saukonpää",
        _PLASMA_LICENCE,
    ),
)

#: Debian packages whose photographs :func:`bundled_photos` uses when they are installed.
DEBIAN_PACKAGES = (_MATE, _LOMIRI, _PLASMA)


def _package_dir(name: str) -> Path | None:
    """Directory of an installed Python package, found without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def bundled_photo_entries(
    system: bool = True, share_dir: str | Path = "/usr/share"
) -> list[tuple[str, Path, str, str, str, str]]:
    """``(id, file, distribution, origin, author, licence)`` of every allow-listed photo present on
    this machine, in :func:`prefstyle.data.photos.bundled_photos`' order."""
    out: list[tuple[str, Path, str, str, str, str]] = []
    for pid, pkg, rel, author, licence, api in _PYTHON_PHOTOS:
        root = _package_dir(pkg)
        if root is None or not (root / rel).is_file():
            continue
        dist = {"skimage": "scikit-image", "sklearn": "scikit-learn"}.get(pkg, pkg)
        out.append((pid, root / rel, dist, f"{dist}: {api}", author, licence))
    if system:
        share = Path(share_dir)
        for pid, pkg, rel, author, licence in _DEBIAN_PHOTOS:
            path = share / rel
            if path.is_file():
                out.append((pid, path, pkg, f"{pkg}: {path}", author, licence))
    return out


def bundled_photo_paths(system: bool = True, share_dir: str | Path = "/usr/share") -> list[Path]:
    """The files of :func:`bundled_photo_entries`, in order."""
    return [e[1] for e in bundled_photo_entries(system, share_dir)]
