"""Sources of the combined ``objects`` library: Debian packages of 3D models, each with a committed
rule map (``t2s_lib/data/assets/<source>_classes.json``) from the source's own names/paths to
object classes.

A rule map is ``{"rules": [{"match": regex, "class": name} | {"match": regex, "exclude": reason}],
"max_per_mesh": n, "license": ..., "creator": ...}``: rules are tried in order on the model's key
(a Sweet Home 3D catalog name, a 0 A.D. actor path, a FlightGear/UFO:AI file path, lower case); the
first match classifies or excludes the model. Unmatched models are not used (counted per source).

Every source function returns ``(jobs, metas, excluded)`` for :func:`library.build_index`:
jobs are converter tuples, metas hold class, name, source package@version, path, creator and
licence, ``excluded`` maps model ids to the reason they are left out.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..paths import CURATED_DATA_DIR

MAPS_DIR = CURATED_DATA_DIR / "assets"
#: The committed rule map of each source.
RULE_MAPS = {
    "sweethome3d": MAPS_DIR / "sweethome3d_classes.json",
    "0ad": MAPS_DIR / "0ad_classes.json",
    "flightgear": MAPS_DIR / "flightgear_classes.json",
    "ufoai": MAPS_DIR / "ufoai_classes.json",
    "kicad": MAPS_DIR / "kicad_classes.json",
}


def load_rule_map(name_or_path: str | Path) -> dict:
    path = RULE_MAPS.get(str(name_or_path), Path(name_or_path))
    cmap = json.loads(Path(path).read_text())
    cmap["_compiled"] = [(re.compile(r["match"]), r) for r in cmap["rules"]]
    return cmap


def rule_maps_hash() -> str:
    """One hash over every committed rule map (a changed map re-indexes the combined library)."""
    h = hashlib.sha1()
    for name in sorted(RULE_MAPS):
        if RULE_MAPS[name].is_file():
            h.update(RULE_MAPS[name].read_bytes())
    return h.hexdigest()[:12]


def match_rule(key: str, cmap: dict) -> tuple[str | None, str | None, dict | None]:
    """(class, None, rule) for a classified key, (None, reason, rule) for an excluded one, else (None, None, None)."""
    key = key.lower().strip()
    compiled = cmap.get("_compiled") or [(re.compile(r["match"]), r) for r in cmap["rules"]]
    for rx, rule in compiled:
        if rx.search(key):
            if "exclude" in rule:
                return None, f"rule map: {rule['exclude']}", rule
            return rule["class"], None, rule
    return None, None, None


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "-", text).strip("-").lower()


@dataclass
class SourceModels:
    """What one source contributes: converter jobs, per-model metadata, exclusions, stats."""

    name: str
    package: str
    jobs: list = field(default_factory=list)
    metas: dict[str, dict] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)
    unclassified: int = 0
    found: int = 0

    def add(self, model_id: str, meta: dict, job: tuple) -> None:
        self.metas[model_id] = meta
        self.jobs.append(job)

    def summary(self) -> dict[str, Any]:
        return {"package": self.package, "found": self.found, "selected": len(self.jobs),
                "excluded_by_rules": len(self.excluded), "unclassified": self.unclassified}


def _cap_per_class(src: SourceModels, cmap: dict) -> None:
    """Apply the rule map's max_models (per rule) caps: keep an evenly spread subset of the sorted ids."""
    caps = {r["class"]: r["max_models"] for r in cmap["rules"] if "class" in r and "max_models" in r}
    for cls, cap in caps.items():
        ids = sorted(i for i, m in src.metas.items() if m["class"] == cls)
        if len(ids) <= cap:
            continue
        step = len(ids) / cap
        keep = {ids[int(k * step)] for k in range(cap)}
        for i in ids:
            if i not in keep:
                src.excluded[i] = f"class {cls!r} capped at {cap} models by the rule map (max_models)"
        src.jobs = [j for j in src.jobs if j[0] not in src.excluded]
        src.metas = {i: m for i, m in src.metas.items() if i not in src.excluded}


# ------------------------------------------------------------------------------------------------
# Sweet Home 3D (Debian sweethome3d-furniture)
# ------------------------------------------------------------------------------------------------
CATALOG_LICENSES = {
    "BlendSwap-CC-0": "CC0-1.0",
    "BlendSwap-CC-BY": "CC-BY-3.0",
    "KatorLegaz": "CC-BY-3.0-US",
    "Reallusion": "CC-BY-3.0-US",
    "Scopia": "CC-BY-3.0",
}


def read_catalog(path: Path) -> list[dict[str, str]]:
    """Parse a PluginFurnitureCatalog.properties file into one dict per numbered entry."""
    entries: dict[int, dict[str, str]] = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        m = re.match(r"^(\w+)#(\d+)=(.*)$", line)
        if m:
            entries.setdefault(int(m.group(2)), {})[m.group(1)] = m.group(3).strip()
    return [entries[k] for k in sorted(entries)]


def sweethome3d_models(root: Path, models_dir: Path, *, version: str = "", prefix: str = "") -> SourceModels:
    """The Sweet Home 3D catalogs unpacked under ``root/<catalog>/`` classified by catalog name."""
    cmap = load_rule_map("sweethome3d")
    excluded_ids = set(cmap.get("exclude_ids", []))
    pkg = f"sweethome3d-furniture@{version}" if version else "sweethome3d-furniture"
    src = SourceModels("sweethome3d", pkg)
    for props in sorted(root.glob("*/PluginFurnitureCatalog.properties")):
        catalog = props.parent.name
        for e in read_catalog(props):
            if "model" not in e:
                continue
            src.found += 1
            name = e.get("name", "")
            model_id = prefix + slug(e["model"].rsplit("/", 1)[0].lstrip("/")).replace("/", "_")
            cls, why, _ = match_rule(name, cmap)
            cls = cmap.get("class_overrides", {}).get(model_id[len(prefix):], cls)
            if why:
                src.excluded[model_id] = f"{name!r}: {why}"
                continue
            if cls is None:
                src.unclassified += 1
                continue
            if model_id[len(prefix):] in excluded_ids:
                src.excluded[model_id] = f"{name!r}: listed in exclude_ids of the rule map ({cmap.get('exclude_ids_reason', '')})"
                continue
            path = props.parent / e["model"].lstrip("/")
            rot = [float(x) for x in e["modelRotation"].split()] if e.get("modelRotation") else None
            src.add(model_id, {"id": model_id, "class": cls, "name": name, "catalog": catalog,
                               "creator": e.get("creator", ""), "license": CATALOG_LICENSES.get(catalog, "see catalog"),
                               "package": pkg, "path": f"usr/share/sweethome3d/furniture/{catalog}.sh3f{e['model']}",
                               "source": f"debian:sweethome3d-furniture/{catalog}.sh3f{e['model']}"},
                    (model_id, str(path), rot, str(models_dir / f"{model_id}.npz")))
    return src


SH3D_JAR = "usr/share/sweethome3d/sweethome3d.jar"
SH3D_DEFAULT_CATALOG = "com/eteks/sweethome3d/io/DefaultFurnitureCatalog.properties"


def unpack_sweethome3d_default(pkg_root: Path, dest: Path) -> None:
    """Unzip Sweet Home 3D's built-in catalog (its properties file + io/resources/ models) from the jar."""
    with zipfile.ZipFile(pkg_root / SH3D_JAR) as zf:
        members = [n for n in zf.namelist()
                   if n == SH3D_DEFAULT_CATALOG or (n.startswith("com/eteks/sweethome3d/io/resources/") and not n.endswith("/"))]
        zf.extractall(dest, members)


def sweethome3d_default_models(unpacked: Path, models_dir: Path, *, version: str = "",
                               prefix: str = "sh3d-default-") -> SourceModels:
    """Sweet Home 3D's built-in catalog (94 models in sweethome3d.jar) under the same rule map."""
    cmap = load_rule_map("sweethome3d")
    pkg = f"sweethome3d@{version}" if version else "sweethome3d"
    src = SourceModels("sweethome3d-default", pkg)
    for e in read_catalog(unpacked / SH3D_DEFAULT_CATALOG):
        if "model" not in e:
            continue
        src.found += 1
        name = e.get("name", "")
        model_id = prefix + slug(Path(e["model"]).stem)
        cls, why, _ = match_rule(name, cmap)
        if why:
            src.excluded[model_id] = f"{name!r}: {why}"
            continue
        if cls is None:
            src.unclassified += 1
            continue
        if model_id[len(prefix):] in set(cmap.get("exclude_ids", [])):
            src.excluded[model_id] = f"{name!r}: listed in exclude_ids of the rule map ({cmap.get('exclude_ids_reason', '')})"
            continue
        rot = [float(x) for x in e["modelRotation"].split()] if e.get("modelRotation") else None
        src.add(model_id, {"id": model_id, "class": cls, "name": name, "catalog": "sweethome3d default catalog",
                           "creator": e.get("creator", "eTeks"), "license": "CC-BY-3.0 or GPL-2+ (eTeks, at your choice)",
                           "package": pkg, "path": f"{SH3D_JAR}!{e['model'].lstrip('/')}",
                           "source": f"debian:{pkg}/{SH3D_JAR}!{e['model'].lstrip('/')}"},
                (model_id, str(unpacked / e["model"].lstrip("/")), rot, str(models_dir / f"{model_id}.npz")))
    return src


# ------------------------------------------------------------------------------------------------
# 0 A.D. (Debian 0ad-data)
# ------------------------------------------------------------------------------------------------
ZEROAD_ARCHIVE = "usr/share/games/0ad/mods/public/public.zip"


def zeroad_models(pkg_root: Path, models_dir: Path, *, version: str = "", prefix: str = "0ad-") -> SourceModels:
    """0 A.D. actors classified by their path; actors sharing a mesh are deduplicated."""
    from .formats.pmd import open_archive, resolve_actor

    cmap = load_rule_map("0ad")
    pkg = f"0ad-data@{version}" if version else "0ad-data"
    src = SourceModels("0ad", pkg)
    archive = str(pkg_root / ZEROAD_ARCHIVE)
    arch = open_archive(archive)
    actors = sorted(n[len("art/actors/"):] for n in arch.names if n.startswith("art/actors/") and n.endswith(".xml"))
    per_mesh: dict[tuple[str, str], list[str]] = {}
    for actor in actors:
        src.found += 1
        model_id = prefix + slug(actor[:-4])
        cls, why, rule = match_rule(actor, cmap)
        if why:
            src.excluded[model_id] = f"{actor}: {why}"
            continue
        if cls is None:
            src.unclassified += 1
            continue
        try:
            res = resolve_actor(arch, actor)
        except Exception as exc:  # unreadable actor XML
            src.excluded[model_id] = f"{actor}: unreadable actor ({type(exc).__name__}: {exc})"[:300]
            continue
        if not res.mesh:
            src.excluded[model_id] = f"{actor}: actor has no mesh"
            continue
        seen = per_mesh.setdefault((cls, res.mesh), [])
        limit = int(rule.get("max_per_mesh", cmap.get("max_per_mesh", 1)))
        if len(seen) >= limit:
            src.excluded[model_id] = f"{actor}: same mesh ({res.mesh}) as {seen[0]} (near-duplicate)"
            continue
        seen.append(model_id)
        src.add(model_id, {"id": model_id, "class": cls, "name": Path(actor).stem.replace("_", " "),
                           "catalog": "0ad-data", "creator": cmap.get("creator", ""), "license": cmap["license"],
                           "package": pkg, "path": f"{ZEROAD_ARCHIVE}!art/actors/{actor}",
                           "mesh": res.mesh, "texture": res.textures.get("baseTex", ""),
                           "source": f"debian:{pkg}/{ZEROAD_ARCHIVE}!art/actors/{actor}"},
                (model_id, actor, None, str(models_dir / f"{model_id}.npz"), "pmd", {"archive": archive}))
    _cap_per_class(src, cmap)
    return src


# ------------------------------------------------------------------------------------------------
# FlightGear (Debian flightgear-data-models)
# ------------------------------------------------------------------------------------------------
FLIGHTGEAR_MODELS = "usr/share/games/flightgear/Models"


FLIGHTGEAR_AI = "usr/share/games/flightgear/AI"


def flightgear_models(pkg_root: Path, models_dir: Path, *, version: str = "", prefix: str = "fg-",
                      ai_root: Path | None = None, ai_version: str = "") -> SourceModels:
    """FlightGear models (AC3D) classified by their path: scenery under Models/ (keys as is) and,
    with ``ai_root`` (flightgear-data-ai), AI aircraft and ships under AI/ (keys ``ai/...``)."""
    cmap = load_rule_map("flightgear")
    pkg = f"flightgear-data-models@{version}" if version else "flightgear-data-models"
    src = SourceModels("flightgear", pkg)
    files = [(f, str(f.relative_to(pkg_root / FLIGHTGEAR_MODELS)), pkg, FLIGHTGEAR_MODELS)
             for f in sorted((pkg_root / FLIGHTGEAR_MODELS).rglob("*.ac"))]
    if ai_root is not None:
        ai_pkg = f"flightgear-data-ai@{ai_version}" if ai_version else "flightgear-data-ai"
        src.package += f",{ai_pkg}"
        files += [(f, "ai/" + str(f.relative_to(ai_root / FLIGHTGEAR_AI)), ai_pkg, FLIGHTGEAR_AI[:-3])
                  for f in sorted((ai_root / FLIGHTGEAR_AI).rglob("*.ac"))]
    for f, rel, fpkg, base in files:
        src.found += 1
        model_id = prefix + slug(rel[:-3])
        cls, why, _ = match_rule(rel, cmap)
        if why:
            src.excluded[model_id] = f"{rel}: {why}"
            continue
        if cls is None:
            src.unclassified += 1
            continue
        path = f"{base}/{rel}" if fpkg == pkg else f"{FLIGHTGEAR_AI}/{rel[3:]}"
        src.add(model_id, {"id": model_id, "class": cls, "name": f.stem, "catalog": fpkg.split("@")[0],
                           "creator": cmap.get("creator", ""), "license": cmap["license"], "package": fpkg,
                           "path": path, "source": f"debian:{fpkg}/{path}"},
                (model_id, str(f), cmap.get("rotation"), str(models_dir / f"{model_id}.npz"), "ac3d",
                 {"texture_dirs": ["../Textures/*"]} if rel.startswith("ai/") else {}))
    _cap_per_class(src, cmap)
    return src


# ------------------------------------------------------------------------------------------------
# UFO:AI (Debian ufoai-data)
# ------------------------------------------------------------------------------------------------
UFOAI_MODELS_PK3 = "usr/share/games/ufoai/base/0models.pk3"


def ufoai_licenses(pkg_root: Path) -> dict[str, tuple[str, str]]:
    """Per-file (licence, copyright) from the package's machine-readable copyright file."""
    out: dict[str, tuple[str, str]] = {}
    text = (pkg_root / "usr/share/doc/ufoai-data/copyright").read_text(errors="replace")
    for block in re.split(r"\n\s*\n", text):
        files = re.search(r"^Files:(.*?)(?=^\S)", block + "\nX", re.M | re.S)
        lic = re.search(r"^License:\s*(\S+)", block, re.M)
        cop = re.search(r"^Copyright:(.*?)(?=^\S)", block + "\nX", re.M | re.S)
        if not files or not lic:
            continue
        who = " ".join(cop.group(1).split()) if cop else ""
        for f in files.group(1).split():
            out[f] = (lic.group(1), who)
    return out


def ufoai_models(pkg_root: Path, unpacked: Path, models_dir: Path, *, version: str = "", prefix: str = "ufoai-") -> SourceModels:
    """UFO:AI MD2 models (unpacked from 0models.pk3 into ``unpacked``) classified by path."""
    cmap = load_rule_map("ufoai")
    pkg = f"ufoai-data@{version}" if version else "ufoai-data"
    src = SourceModels("ufoai", pkg)
    lic = ufoai_licenses(pkg_root)
    default = lic.get("*", ("GPL-2+", "The UFO:AI Team"))
    for f in sorted(unpacked.rglob("*.md2")):
        rel = str(f.relative_to(unpacked))
        src.found += 1
        model_id = prefix + slug(rel.removeprefix("models/")[:-4])
        cls, why, _ = match_rule(rel, cmap)
        if why:
            src.excluded[model_id] = f"{rel}: {why}"
            continue
        if cls is None:
            src.unclassified += 1
            continue
        licence, who = lic.get(f"base/{rel}", default)
        src.add(model_id, {"id": model_id, "class": cls, "name": f.stem, "catalog": "ufoai-data", "creator": who,
                           "license": licence, "package": pkg, "path": f"{UFOAI_MODELS_PK3}!{rel}",
                           "source": f"debian:{pkg}/{UFOAI_MODELS_PK3}!{rel}"},
                (model_id, str(f), cmap.get("rotation"), str(models_dir / f"{model_id}.npz"), "md2",
                 {"root": str(unpacked)}))
    _cap_per_class(src, cmap)
    return src


# ------------------------------------------------------------------------------------------------
# KiCad 3D packages (Debian kicad-packages3d)
# ------------------------------------------------------------------------------------------------
KICAD_MODELS = "usr/share/kicad/3dmodels"


def kicad_models(pkg_root: Path, models_dir: Path, *, version: str = "", prefix: str = "kicad-") -> SourceModels:
    """KiCad component models (VRML) classified by ``<library>.3dshapes/<name>.wrl``."""
    cmap = load_rule_map("kicad")
    pkg = f"kicad-packages3d@{version}" if version else "kicad-packages3d"
    src = SourceModels("kicad", pkg)
    root = pkg_root / KICAD_MODELS
    for f in sorted(root.glob("*.3dshapes/*.wrl")):
        rel = str(f.relative_to(root))
        src.found += 1
        model_id = prefix + slug(rel[:-4].replace(".3dshapes", ""))
        cls, why, _ = match_rule(rel, cmap)
        if why:
            src.excluded[model_id] = f"{rel}: {why}"
            continue
        if cls is None:
            src.unclassified += 1
            continue
        src.add(model_id, {"id": model_id, "class": cls, "name": f.stem, "catalog": "kicad-packages3d",
                           "creator": cmap.get("creator", ""), "license": cmap["license"], "package": pkg,
                           "path": f"{KICAD_MODELS}/{rel}", "source": f"debian:{pkg}/{KICAD_MODELS}/{rel}"},
                (model_id, str(f), None, str(models_dir / f"{model_id}.npz"), "vrml", {}))
    _cap_per_class(src, cmap)
    return src


def unpack_ufoai(pkg_root: Path, dest: Path) -> None:
    """Unzip the models of 0models.pk3 (MD2 + skins) into ``dest``."""
    with zipfile.ZipFile(pkg_root / UFOAI_MODELS_PK3) as zf:
        members = [n for n in zf.namelist() if n.startswith("models/") and not n.endswith("/")]
        zf.extractall(dest, members)


# ------------------------------------------------------------------------------------------------
# The combined library
# ------------------------------------------------------------------------------------------------
OBJECTS_LIBRARY = "objects"
MIN_MODELS_PER_CLASS = 4


def deb_version(pkg_root: Path) -> str:
    """The Debian version of an unpacked package (from its fetch stamp's archive name)."""
    try:
        archive = json.loads((pkg_root / ".done.json").read_text()).get("archive", "")
    except (OSError, json.JSONDecodeError):
        return ""
    parts = archive.split("_")
    from urllib.parse import unquote

    return unquote(parts[1]) if len(parts) >= 3 else ""  # apt writes an epoch colon as %3a


def objects_stamp(versions: dict[str, str]) -> str:
    from .library import CONVERT_VERSION, INDEX_VERSION

    blob = json.dumps([rule_maps_hash(), sorted(versions.items()), INDEX_VERSION, CONVERT_VERSION])
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def index_objects(roots: dict[str, Path], *, workers: int = 2, log: Any = print, force: bool = False) -> dict:
    """Index the combined ``objects`` library from the unpacked packages in ``roots``
    (keys: sweethome3d (the unzipped catalogs), 0ad, flightgear, ufoai (the unpacked pk3) and the
    package roots 0ad-pkg/flightgear-pkg/ufoai-pkg for versions and licences). Resumable."""
    from .library import build_index, library_root, read_index

    dest = library_root() / OBJECTS_LIBRARY
    versions = {k: deb_version(v) for k, v in roots.items() if k.endswith("-pkg")}
    stamp = objects_stamp(versions)
    if not force:
        idx = read_index(dest)
        if idx is not None and idx.get("stamp") == stamp:
            return idx
    models_dir = dest / "models"
    sources = [
        sweethome3d_models(roots["sweethome3d"], models_dir, version=versions.get("sweethome3d-pkg", ""), prefix="sh3d-"),
        sweethome3d_default_models(roots["sweethome3d-default"], models_dir, version=versions.get("sweethome3d-default-pkg", "")),
        zeroad_models(roots["0ad-pkg"], models_dir, version=versions.get("0ad-pkg", "")),
        flightgear_models(roots["flightgear-pkg"], models_dir, version=versions.get("flightgear-pkg", ""),
                          ai_root=roots["flightgear-ai-pkg"], ai_version=versions.get("flightgear-ai-pkg", "")),
        ufoai_models(roots["ufoai-pkg"], roots["ufoai"], models_dir, version=versions.get("ufoai-pkg", "")),
        kicad_models(roots["kicad-pkg"], models_dir, version=versions.get("kicad-pkg", "")),
    ]
    jobs, metas, excluded = [], {}, {}
    for s in sources:
        jobs += s.jobs
        metas.update(s.metas)
        excluded.update(s.excluded)
        log(f"source {s.name} ({s.package}): {s.found} models, {len(s.jobs)} selected, "
            f"{len(s.excluded)} excluded by rules, {s.unclassified} unclassified")
    log(f"indexing {len(jobs)} models with {workers} worker(s) (resumes where a previous run stopped)...")
    idx = build_index(OBJECTS_LIBRARY, dest, jobs, metas, source="debian:" + ",".join(s.package for s in sources),
                      workers=workers, min_models=MIN_MODELS_PER_CLASS, log=log,
                      extra={"excluded": excluded, "stamp": stamp, "rule_maps": rule_maps_hash(),
                             "sources": {s.name: s.summary() for s in sources}})
    per_source: dict[str, int] = {}
    for m in idx["models"]:
        per_source[m["package"].split("@")[0]] = per_source.get(m["package"].split("@")[0], 0) + 1
    log(f"library objects: {idx['n_models']} models in {len(idx['classes'])} classes; per package {per_source}")
    return idx
