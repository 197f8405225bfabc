"""Dataset loaders, the registry, ``data check`` and the ``scenetalk data`` command, on small
files that the tests write in each format's real schema."""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
from pathlib import Path

import pytest

import scenetalk.cli
from scenetalk.data.check import check_dataset, format_report
from scenetalk.data.flickr8k import load_flickr8k_text
from scenetalk.data.flickr8k_cn import load_flickr8k_cn, load_flickr8k_cn_trans
from scenetalk.data.iapr import load_iapr
from scenetalk.data.karpathy import load_karpathy
from scenetalk.data.multi30k import load_multi30k
from scenetalk.data.registry import DATASETS, default_root, load_dataset
from scenetalk.data.schema import CaptionDataset, ImageRecord, Sentence
from scenetalk.data.text import tokenize
from scenetalk.errors import DataError, ScenetalkError

# --------------------------------------------------------------------------- file writers


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def karpathy_image(filename, split, imgid, raws, first_sentid, **extra):
    sentids = list(range(first_sentid, first_sentid + len(raws)))
    return {"filename": filename, "imgid": imgid, "split": split, "sentids": sentids,
            # the file's own tokens are deliberately wrong: loaders must tokenize ``raw``
            "sentences": [{"raw": r, "tokens": ["IGNORED"], "imgid": imgid, "sentid": s}
                          for r, s in zip(raws, sentids)], **extra}


def write_karpathy(path: Path, dataset="flickr8k") -> Path:
    images = [karpathy_image("111_aa.jpg", "train", 0, ["A dog's ball .", "Two dogs play ."], 0),
              karpathy_image("222_bb.jpg", "val", 1, ["A red t-shirt ."], 2),
              karpathy_image("333_cc.jpg", "test", 2, ["A cat sleeps ."], 3)]
    return write(path, json.dumps({"images": images, "dataset": dataset}, indent=1))


F8K = {  # Flickr8K-style names: <flickr id>_<hex>.jpg
    "111_aa.jpg": ["A dog runs .", "A dog is running on grass ."],
    "222_bb.jpg": ["A girl in a pink dress .", "A child climbs stairs ."],
    "333_cc.jpg": ["Two men play football .", "Men playing soccer ."],
    "444_dd.jpg": ["A boat on a lake .", "A lake ."],
}
F8K_SPLITS = {"train": ["111_aa.jpg"], "dev": ["222_bb.jpg"], "test": ["333_cc.jpg"]}  # 444 in none


def write_flickr8k_text(folder: Path, captions=F8K, splits=F8K_SPLITS, extra: str = "") -> Path:
    lines = [f"{name}#{k}\t{text}" for name, texts in captions.items() for k, text in enumerate(texts)]
    token = write(folder / "Flickr8k.token.txt", "\n".join(lines) + "\n" + extra)
    for split, names in splits.items():
        write(folder / f"Flickr_8k.{split}Images.txt", "".join(n + "\n" for n in names))
    return token


CN = {"111_aa.jpg": ["一只狗在跑。", "狗在草地上跑"], "222_bb.jpg": ["女孩穿着粉色裙子。"],
      "444_dd.jpg": ["湖上有一条船。"]}


def write_flickr8k_cn(folder: Path) -> Path:
    lines = [f"{name}#zhc#{k} {text}" for name, texts in CN.items() for k, text in enumerate(texts)]
    write(folder / "flickr8ktrain.txt", "111_aa\n")
    write(folder / "flickr8kval.txt", "222_bb\n")
    write(folder / "flickr8ktest.txt", "")
    write(folder / "flickr8kzhmtest.captions.txt", "333_cc.jpg#zhm#0 两个男人在踢足球。\n"
          "333_cc.jpg#zhm#1 男人们踢球\n")
    return write(folder / "flickr8kzhc.caption.txt", "\n".join(lines) + "\n")


# Multi30K: Flickr30K names; 111 is in Multi30K's *test* split but Flickr8K's train split
M30K = {"train": {"222.jpg": 1, "999.jpg": 2}, "val": {"444.jpg": 3}, "test_2016": {"111.jpg": 4}}


def write_multi30k(folder: Path, counts=None) -> Path:
    for part, images in M30K.items():
        write(folder / "image_splits" / f"{part}_images.txt", "".join(n + "\n" for n in images))
        for k in range(1, 6):
            lines = [f"Beschreibung {k} von Bild {number} mit Größe." for number in images.values()]
            if counts and (part, k) in counts:
                lines = lines[: counts[(part, k)]]
            path = folder / "raw" / f"{part}.{k}.de.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(gzip.compress("".join(line + "\n" for line in lines).encode()))
    return folder


def eng_file(docno: str, description: str, image: str) -> str:
    return (f"<DOC>\n<DOCNO>{docno}</DOCNO>\n<TITLE>Title</TITLE>\n<DESCRIPTION>{description}"
            f"</DESCRIPTION>\n<NOTES></NOTES>\n<LOCATION>Salvador, Brazil</LOCATION>\n"
            f"<DATE>2 October 2002</DATE>\n<IMAGE>{image}</IMAGE>\n"
            f"<THUMBNAIL>thumbnails/{image[7:]}</THUMBNAIL>\n</DOC>\n")


def write_iapr(folder: Path) -> Path:
    ann = folder / "annotations_complete_eng"
    write(ann / "00" / "25.eng", eng_file(
        "annotations/00/25.eng", "a yellow building with white columns in the background; "
        "two palm trees in front of the house;; a café\nnear the road;", "images/00/25.jpg"),
        encoding="iso-8859-1")
    write(ann / "00" / "26.eng", eng_file("annotations/00/26.eng", "a grey sky", "images/00/26.jpg"),
          encoding="iso-8859-1")
    write(ann / "01" / "1000.eng", eng_file("annotations/01/1000.eng", "a boy; a wall", "images/01/1000.jpg"))
    write(folder / "splits" / "train.txt", "images/00/25.jpg\n01/1000\n")
    write(folder / "splits" / "test.txt", "26\n")
    return ann


# --------------------------------------------------------------------------- Karpathy JSON


def test_karpathy_flickr8k(tmp_path):
    path = write_karpathy(tmp_path / "dataset_flickr8k.json")
    ds = load_karpathy(path)
    assert ds.name == "flickr8k" and ds.sources == [str(path)]
    assert [im.file_name for im in ds.images] == ["111_aa.jpg", "222_bb.jpg", "333_cc.jpg"]
    assert ds.split_counts() == {"train": 1, "val": 1, "test": 1}
    first = ds.images[0]
    assert first.image_id == 0 and first.subdir == "" and first.relpath == "111_aa.jpg"
    assert [s.sentence_id for s in ds.sentences()] == [0, 1, 2, 3]
    assert first.sentences[0].raw == "A dog's ball ."
    assert first.sentences[0].tokens == ["a", "dogs", "ball"]  # from raw, not the file's tokens
    assert ds.images[1].sentences[0].tokens == ["a", "red", "t", "shirt"]
    assert {s.language for s in ds.sentences()} == {"en"}


def test_karpathy_flickr30k_name_from_file(tmp_path):
    ds = load_karpathy(write_karpathy(tmp_path / "dataset_flickr30k.json", dataset="flickr30k"))
    assert ds.name == "flickr30k" and len(ds) == 3


def test_karpathy_coco_filepath_and_cocoid(tmp_path):
    images = [
        karpathy_image("COCO_val2014_000000391895.jpg", "test", 0, ["A man rides a motorbike ."], 770337,
                       filepath="val2014", cocoid=391895),
        karpathy_image("COCO_val2014_000000522418.jpg", "restval", 1, ["A woman cuts a cake ."], 681330,
                       filepath="val2014", cocoid=522418),
        karpathy_image("COCO_train2014_000000057870.jpg", "train", 2, ["A restaurant table ."], 787980,
                       filepath="train2014", cocoid=57870),
    ]
    path = write(tmp_path / "dataset_coco.json", json.dumps({"images": images, "dataset": "coco"}))
    ds = load_karpathy(path)
    assert [im.image_id for im in ds.images] == [391895, 522418, 57870]
    assert ds.images[0].relpath == os.path.join("val2014", "COCO_val2014_000000391895.jpg")
    assert ds.images[2].subdir == "train2014"
    assert ds.split_counts() == {"train": 1, "test": 1, "restval": 1}
    assert ds.images[1].sentences[0].sentence_id == 681330


@pytest.mark.parametrize("mutate, record, words", [
    (lambda d: d["images"][1].pop("split"), "images[1] (222_bb.jpg)", "missing field 'split'"),
    (lambda d: d["images"][2].pop("filename"), "images[2]", "missing field 'filename'"),
    (lambda d: d["images"][0].pop("imgid"), "images[0] (111_aa.jpg)", "missing field 'imgid'"),
    (lambda d: d["images"][1].update(split="dev"), "images[1] (222_bb.jpg)", "unknown split 'dev'"),
    (lambda d: d["images"][0].update(sentences="A dog ."), "images[0] (111_aa.jpg)", "must be a list"),
    (lambda d: d["images"][0]["sentences"][1].pop("raw"), "images[0] (111_aa.jpg) sentences[1]",
     "missing field 'raw'"),
    (lambda d: d["images"][2].update(imgid="2"), "images[2] (333_cc.jpg)", "must be an integer"),
    (lambda d: d.pop("images"), "top level", '"images" list'),
])
def test_karpathy_malformed_records(tmp_path, mutate, record, words):
    path = write_karpathy(tmp_path / "dataset_flickr8k.json")
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data))
    with pytest.raises(DataError) as err:
        load_karpathy(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {record}: ")
    assert words in message
    assert err.value.path == str(path)


def test_karpathy_bad_json_names_line_and_column(tmp_path):
    path = write(tmp_path / "dataset_flickr8k.json", '{"images": [\n  {"filename": "a.jpg",\n  "split" "train"}\n]}')
    with pytest.raises(DataError) as err:
        load_karpathy(path)
    assert str(err.value).startswith(f"{path}: line 3 column 11: invalid JSON")


def test_karpathy_undecodable_bytes_name_offset(tmp_path):
    good = write_karpathy(tmp_path / "good.json").read_bytes()
    offset = good.index(b"Two dogs")
    path = tmp_path / "dataset_flickr8k.json"
    path.write_bytes(good[:offset] + b"\xff" + good[offset + 1:])
    line = good[:offset].count(b"\n") + 1
    with pytest.raises(DataError) as err:
        load_karpathy(path)
    assert str(err.value).startswith(f"{path}: line {line}, byte offset {offset}: cannot decode byte 0xff")


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="file not found") as err:
        load_karpathy(tmp_path / "nope.json")
    assert err.value.path == str(tmp_path / "nope.json")


# --------------------------------------------------------------------------- Flickr8K text


def test_flickr8k_text_splits_unassigned_and_orphans(tmp_path):
    orphans = ("2258277193_586949ec62.jpg.1#0\tpeople waiting for the subway\n"
               "2258277193_586949ec62.jpg#1\tSome people looking out windows .\n")
    token = write_flickr8k_text(tmp_path, extra=orphans)
    ds = load_flickr8k_text(token)
    assert [im.file_name for im in ds.images] == list(F8K)
    assert [im.split for im in ds.images] == ["train", "val", "test", "unassigned"]
    assert [im.image_id for im in ds.images] == [0, 1, 2, 3]
    assert ds.images[1].sentences[0].raw == "A girl in a pink dress ."
    assert ds.images[1].sentences[0].tokens == ["a", "girl", "in", "a", "pink", "dress"]
    assert [s.sentence_id for s in ds.sentences()] == list(range(8))
    assert len(ds.problems) == 2
    assert "line 9" in ds.problems[0] and "2258277193_586949ec62.jpg.1" in ds.problems[0]
    assert "line 10" in ds.problems[1] and "'2258277193_586949ec62.jpg'" in ds.problems[1]
    assert ds.sources[0] == str(token) and ds.sources[2].endswith("Flickr_8k.devImages.txt")


def test_flickr8k_text_orphan_kept_when_a_split_lists_it(tmp_path):
    token = write_flickr8k_text(tmp_path, splits={"train": ["2258277193_586949ec62.jpg"], "dev": [], "test": []},
                                extra="2258277193_586949ec62.jpg#1\tSome people .\n")
    ds = load_flickr8k_text(token)
    assert ds.by_name()["2258277193_586949ec62.jpg"].split == "train"
    assert ds.problems == []


def test_flickr8k_text_crlf_bom_and_repeated_caption_number(tmp_path):
    text = "\ufeff111_aa.jpg#0\tA dog .\r\n111_aa.jpg#0\tA dog again .\r\n\r\n222_bb.jpg#0\tA cat .\r\n"
    token = write(tmp_path / "Flickr8k.token.txt", text)
    ds = load_flickr8k_text(token, {"train": write(tmp_path / "train.txt", "111_aa.jpg\r\n222_bb.jpg\r\n")})
    assert [im.file_name for im in ds.images] == ["111_aa.jpg", "222_bb.jpg"]
    assert [s.raw for s in ds.sentences()] == ["A dog .", "A dog again .", "A cat ."]
    assert ds.problems == ["Flickr8k.token.txt line 2: caption #0 of '111_aa.jpg' repeats line 1 (both kept)"]


@pytest.mark.parametrize("bad_line, words", [
    ("333_cc.jpg#2 A line with spaces, no tab .", "no tab"),
    ("333_cc.jpg\tA caption with no number .", "does not end in '#<number>'"),
    ("333_cc.jpg#x\tA caption .", "does not end in '#<number>'"),
])
def test_flickr8k_text_malformed_line(tmp_path, bad_line, words):
    token = write_flickr8k_text(tmp_path, extra=bad_line + "\n")
    with pytest.raises(DataError) as err:
        load_flickr8k_text(token)
    assert str(err.value).startswith(f"{token}: line 9: ")
    assert words in str(err.value)


def test_flickr8k_split_list_naming_image_without_captions(tmp_path):
    token = write_flickr8k_text(tmp_path, splits={"train": ["111_aa.jpg"], "dev": ["222_bb.jpg", "555_ee.jpg"],
                                                  "test": ["333_cc.jpg"]})
    with pytest.raises(DataError) as err:
        load_flickr8k_text(token)
    dev = tmp_path / "Flickr_8k.devImages.txt"
    assert str(err.value).startswith(f"{dev}: line 2: image '555_ee.jpg' has no captions in {token}")


def test_flickr8k_image_listed_in_two_splits(tmp_path):
    token = write_flickr8k_text(tmp_path, splits={"train": ["111_aa.jpg"], "dev": ["222_bb.jpg"],
                                                  "test": ["333_cc.jpg", "111_aa.jpg"]})
    with pytest.raises(DataError, match=r"testImages.txt: line 2: image '111_aa.jpg' is listed twice"):
        load_flickr8k_text(token)


def test_flickr8k_undecodable_bytes(tmp_path):
    token = write_flickr8k_text(tmp_path)
    data = token.read_bytes()
    offset = data.index("Two men".encode())
    token.write_bytes(data[:offset] + "Zwei Männer".encode("latin-1") + data[offset + 7:])
    with pytest.raises(DataError) as err:
        load_flickr8k_text(token)
    assert str(err.value).startswith(f"{token}: line 5, byte offset {offset + 6}: cannot decode byte 0xe4 as utf-8")


# --------------------------------------------------------------------------- Flickr8K-CN


def test_flickr8k_cn_char_mode_and_splits(tmp_path):
    caption_file = write_flickr8k_cn(tmp_path)
    ds = load_flickr8k_cn(caption_file, zh_mode="char")
    assert ds.name == "flickr8k-cn"
    assert [(im.file_name, im.split) for im in ds.images] == [
        ("111_aa.jpg", "train"), ("222_bb.jpg", "val"), ("444_dd.jpg", "unassigned")]
    first = ds.images[0].sentences[0]
    assert first.raw == "一只狗在跑。" and first.language == "zh"
    assert first.tokens == ["一", "只", "狗", "在", "跑"]
    assert len(ds.sources) == 4 and ds.problems == []


def test_flickr8k_cn_jieba_mode(tmp_path):
    ds = load_flickr8k_cn(write_flickr8k_cn(tmp_path))
    tokens = ds.images[1].sentences[0].tokens
    assert "".join(tokens) == "女孩穿着粉色裙子"
    assert tokens == tokenize("女孩穿着粉色裙子。", "zh", "jieba") and len(tokens) < 8


@pytest.mark.parametrize("bad_line", ["555_ee.jpg#zhm#0 错误的标签", "555_ee.jpg#zhc#0", "555_ee.jpg#0 没有标签"])
def test_flickr8k_cn_malformed_line(tmp_path, bad_line):
    caption_file = write_flickr8k_cn(tmp_path)
    with caption_file.open("a", encoding="utf-8") as f:
        f.write(bad_line + "\n")
    with pytest.raises(DataError) as err:
        load_flickr8k_cn(caption_file, zh_mode="char")
    assert str(err.value).startswith(f"{caption_file}: line 5: expected '<image>#zhc#<k> <sentence>'")


def test_flickr8k_cn_split_list_image_without_sentences(tmp_path):
    caption_file = write_flickr8k_cn(tmp_path)
    write(tmp_path / "flickr8ktest.txt", "333_cc\n")  # 333 has no native Chinese sentence here
    with pytest.raises(DataError, match=r"flickr8ktest.txt: line 1: image '333_cc' has no captions"):
        load_flickr8k_cn(caption_file, zh_mode="char")


def test_flickr8k_cn_translations(tmp_path):
    write_flickr8k_cn(tmp_path)
    ds = load_flickr8k_cn_trans(tmp_path / "flickr8kzhmtest.captions.txt", zh_mode="char")
    assert ds.name == "flickr8k-cn-trans"
    assert [(im.file_name, im.split, len(im.sentences)) for im in ds.images] == [("333_cc.jpg", "test", 2)]
    assert ds.images[0].sentences[1].tokens == list("男人们踢球")
    checked = load_flickr8k_cn_trans(tmp_path / "flickr8kzhmtest.captions.txt", tmp_path / "flickr8kval.txt",
                                     zh_mode="char")
    assert len(checked.problems) == 1 and "333_cc.jpg" in checked.problems[0]


# --------------------------------------------------------------------------- Multi30K


def test_multi30k_maps_by_flickr_id_and_keeps_flickr8k_splits(tmp_path):
    token = write_flickr8k_text(tmp_path / "f8k")
    ds = load_multi30k(write_multi30k(tmp_path / "m30k"), token)
    assert ds.name == "multi30k-de"
    # 333 has no German descriptions; 999 is not a Flickr8K photo
    assert [(im.file_name, im.split, im.image_id) for im in ds.images] == [
        ("111_aa.jpg", "train", 0), ("222_bb.jpg", "val", 1), ("444_dd.jpg", "unassigned", 3)]
    assert [s.raw for s in ds.images[0].sentences] == [
        f"Beschreibung {k} von Bild 4 mit Größe." for k in range(1, 6)]
    assert ds.images[0].sentences[0].tokens == ["beschreibung", "1", "von", "bild", "4", "mit", "größe"]
    assert {s.language for s in ds.sentences()} == {"de"}
    assert ds.problems == ["1 of 4 Flickr8K images have no de descriptions in Multi30K and are left out (test 1)"]
    assert len(ds.sources) == 4 + 3 * 6


def test_multi30k_line_count_mismatch_names_both_files(tmp_path):
    token = write_flickr8k_text(tmp_path / "f8k")
    folder = write_multi30k(tmp_path / "m30k", counts={("train", 3): 1})
    with pytest.raises(DataError) as err:
        load_multi30k(folder, token)
    message = str(err.value)
    assert message.startswith(f"{folder / 'raw' / 'train.3.de.gz'}: has 1 lines but ")
    assert str(folder / "image_splits" / "train_images.txt") in message


def test_multi30k_corrupt_gzip(tmp_path):
    token = write_flickr8k_text(tmp_path / "f8k")
    folder = write_multi30k(tmp_path / "m30k")
    (folder / "raw" / "val.2.de.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=r"val\.2\.de\.gz: cannot read"):
        load_multi30k(folder, token)


# --------------------------------------------------------------------------- IAPR TC-12


def test_iapr_latin1_sentences_and_splits(tmp_path):
    ds = load_iapr(write_iapr(tmp_path), {"train": tmp_path / "splits/train.txt",
                                          "test": tmp_path / "splits/test.txt"})
    assert [(im.relpath, im.image_id, im.split) for im in ds.images] == [
        ("images/00/25.jpg", 25, "train"), ("images/00/26.jpg", 26, "test"),
        ("images/01/1000.jpg", 1000, "train")]
    assert [s.raw for s in ds.images[0].sentences] == [
        "a yellow building with white columns in the background",
        "two palm trees in front of the house", "a café near the road"]
    assert ds.images[0].sentences[2].tokens == ["a", "café", "near", "the", "road"]
    assert [s.raw for s in ds.images[2].sentences] == ["a boy", "a wall"]  # UTF-8 file
    assert ds.images[0].subdir == "images/00" and ds.images[0].file_name == "25.jpg"


def test_iapr_without_lists_everything_unassigned(tmp_path):
    ds = load_iapr(write_iapr(tmp_path))
    assert ds.split_counts() == {"unassigned": 3}


def test_iapr_missing_image_element(tmp_path):
    ann = write_iapr(tmp_path)
    bad = write(ann / "02" / "7.eng", "<DOC><DOCNO>annotations/02/7.eng</DOCNO><DESCRIPTION>x</DESCRIPTION></DOC>")
    with pytest.raises(DataError) as err:
        load_iapr(ann)
    assert str(err.value).startswith(f"{bad}: <DOC>: no <IMAGE>")


def test_iapr_split_list_unknown_image(tmp_path):
    ann = write_iapr(tmp_path)
    test_list = write(tmp_path / "splits/test.txt", "26\n40000\n")
    with pytest.raises(DataError, match=r"test\.txt: line 2: image '40000' has no captions"):
        load_iapr(ann, {"test": test_list})


def test_iapr_forced_encoding_error(tmp_path):
    ann = write_iapr(tmp_path)
    with pytest.raises(DataError, match=r"25\.eng: line 4, byte offset \d+: cannot decode byte 0xe9 as utf-8"):
        load_iapr(ann, encoding="utf-8")


# --------------------------------------------------------------------------- registry


def make_root(root: Path) -> Path:
    """A data root with the flickr8k (JSON + text), flickr8k_cn, multi30k, coco and iapr layouts."""
    write_karpathy(root / "flickr8k" / "dataset_flickr8k.json")
    write_flickr8k_text(root / "flickr8k" / "Flickr8k_text")
    for name in ("111_aa.jpg", "222_bb.jpg"):  # 333_cc.jpg and 444_dd.jpg are missing
        write(root / "flickr8k" / "images" / name, "not really a jpeg")
    write_flickr8k_cn(root / "flickr8k_cn")
    write_multi30k(root / "multi30k")
    write_iapr(root / "iaprtc12")
    coco = [karpathy_image("COCO_val2014_000000391895.jpg", "restval", 0, ["A man ."], 7, filepath="val2014",
                           cocoid=391895)]
    write(root / "coco" / "dataset_coco.json", json.dumps({"images": coco, "dataset": "coco"}))
    return root


@pytest.fixture
def root(tmp_path):
    return make_root(tmp_path / "data")


def test_registry_loads_every_named_layout(root):
    expected = {"flickr8k": 3, "flickr8k-text": 4, "coco": 1, "flickr8k-cn": 3, "flickr8k-cn-trans": 1,
                "multi30k-de": 3, "iapr": 3}
    for name, count in expected.items():
        ds = load_dataset(name, root=root, zh_mode="char")
        assert len(ds) == count, name
        assert ds.image_dir == str(root / DATASETS[name].images), name
    assert load_dataset("coco", root=root).image_dir == str(root / "coco")
    assert load_dataset("iapr", root=root).split_counts() == {"train": 2, "test": 1}
    assert load_dataset("flickr8k", root=root, image_dir=root / "elsewhere").image_dir == str(root / "elsewhere")


def test_registry_loads_paths(root):
    ds = load_dataset(root / "flickr8k" / "dataset_flickr8k.json")
    assert ds.name == "flickr8k" and ds.image_dir == str(root / "flickr8k" / "images")
    ds = load_dataset(str(root / "flickr8k" / "Flickr8k_text" / "Flickr8k.token.txt"))
    assert ds.name == "flickr8k-text" and ds.split_counts()["unassigned"] == 1
    assert ds.image_dir == str(root / "flickr8k" / "images")


def test_registry_unknown_name_lists_known_names(root):
    with pytest.raises(ScenetalkError) as err:
        load_dataset("flickr9k", root=root)
    assert not isinstance(err.value, DataError)
    assert "'flickr9k'" in str(err.value)
    assert all(name in str(err.value) for name in DATASETS)
    with pytest.raises(TypeError, match="zh-mode|zhmode"):
        load_dataset("flickr8k", root=root, zhmode="char")


def test_registry_missing_file_names_expected_path(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset("flickr30k", root=tmp_path)
    assert err.value.path == str(tmp_path / "flickr30k" / "dataset_flickr30k.json")
    assert "--root" in str(err.value)
    with pytest.raises(DataError, match="not found"):
        load_dataset(tmp_path / "missing.json")


def test_default_root(tmp_path, monkeypatch):
    monkeypatch.delenv("SCENETALK_DATA", raising=False)
    work = tmp_path / "project"
    work.mkdir()
    monkeypatch.chdir(work)
    assert default_root() == Path("data")  # nothing exists: ./data
    (tmp_path / "shared" / "data").mkdir(parents=True)
    assert default_root() == Path("../shared/data")
    (work / "data").mkdir()
    assert default_root() == Path("data")
    monkeypatch.setenv("SCENETALK_DATA", str(tmp_path / "elsewhere"))
    assert default_root() == tmp_path / "elsewhere"


# --------------------------------------------------------------------------- data check


def test_check_counts_vocabulary_from_train_only_and_problems(tmp_path):
    def sentences(texts, first_id):
        return [Sentence(t, tokenize(t), "en", first_id + i) for i, t in enumerate(texts)]

    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(b"")
    ds = CaptionDataset("toy", [
        ImageRecord("a.jpg", "train", 0, sentences(["a dog", "a dog runs", "the dog"], 0)),
        ImageRecord("b.jpg", "val", 1, sentences(["a cat", "a cat", "a cat", "  "], 3)),
        ImageRecord("c.jpg", "test", 2, sentences(["a dog", "...", ], 3)),  # ids 3, 4 repeat b's
        ImageRecord("d.jpg", "unassigned", 3, []),
    ], image_dir=str(tmp_path / "images"), sources=["toy.txt"], problems=["loader said so"])
    report = check_dataset(ds, min_count=2)
    assert report.splits == {"train": {"images": 1, "sentences": 3}, "val": {"images": 1, "sentences": 4},
                             "test": {"images": 1, "sentences": 2}, "unassigned": {"images": 1, "sentences": 0}}
    # train only: "a" and "dog" (2 each); "cat" (3 in val) must not count
    assert report.vocabulary["words"] == 2
    assert report.sentences_per_image == {"min": 0, "max": 4, "mean": 2.25, "histogram": {0: 1, 2: 1, 3: 1, 4: 1}}
    kinds = [p["kind"] for p in report.problems]
    assert kinds == ["loader", "missing image", "missing image", "missing image", "no sentences",
                     "empty sentence", "empty sentence", "duplicate sentence id", "duplicate sentence id"]
    messages = " | ".join(p["message"] for p in report.problems)
    assert "b.jpg (val) not found" in messages and "a.jpg (" not in messages
    assert "sentence 6 is empty" in messages and "'...' has no words" in messages
    assert "sentence id 3 is used 2 times" in messages
    text = format_report(report)
    assert "problems: 9" in text and "3 of 4 files present" not in text and "1 of 4 files present" in text
    assert "vocabulary: 2 words seen at least 2 times in the 3 train sentences" in text


def test_check_without_image_folder_skips_file_check(tmp_path):
    ds = CaptionDataset("toy", [ImageRecord("a.jpg", "train", 0, [Sentence("a dog", ["a", "dog"])])],
                        image_dir=str(tmp_path / "absent"))
    report = check_dataset(ds, min_count=1)
    assert report.problems == [] and report.vocabulary["words"] == 2
    assert "does not exist; image files not checked" in format_report(report)


# --------------------------------------------------------------------------- command line


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run ``scenetalk.cli.main``; returns (exit code, stdout, stderr).

    Sub-commands whose modules do not exist yet (other parts of the project are written in
    parallel) are left out of the parser; ``data`` is always there.
    """
    available = tuple(c for c in scenetalk.cli.COMMANDS
                      if importlib.util.find_spec(f"scenetalk.commands.{c}") is not None)
    assert "data" in available
    monkeypatch.setattr(scenetalk.cli, "COMMANDS", available)
    monkeypatch.delenv("SCENETALK_DATA", raising=False)

    def run(*argv):
        code = scenetalk.cli.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_cli_check_reports_counts_and_problems(cli, root):
    code, out, err = cli("data", "check", "flickr8k-text", "--root", root, "--min-count", "1")
    assert code == 0 and err == ""
    assert str(root / "flickr8k" / "Flickr8k_text" / "Flickr8k.token.txt") in out
    assert "unassigned         1          2" in out
    assert "total              4          8" in out
    assert "2 of 4 files present" in out
    assert "problems: 2" in out and "333_cc.jpg (test) not found" in out
    # train split is image 111 only: "a dog runs", "a dog is running on grass"
    assert "vocabulary: 7 words seen at least 1 times in the 2 train sentences" in out


def test_cli_check_json(cli, root):
    code, out, _ = cli("data", "check", "flickr8k-cn", "--root", root, "--zh-mode", "char", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["total"] == {"images": 3, "sentences": 4}
    assert report["splits"]["unassigned"] == {"images": 1, "sentences": 1}
    assert report["vocabulary"]["language"] == "zh" and report["problem_count"] == 1  # 444_dd.jpg missing


@pytest.mark.parametrize("argv, words", [
    (["data", "check", "nope"], "unknown dataset 'nope'"),
    (["data", "check", "flickr30k"], "flickr30k/dataset_flickr30k.json: not found"),
    (["data", "check", "flickr8k", "--images", "/no/such/folder"], "image folder /no/such/folder does not exist"),
    (["data", "check", "flickr8k", "--min-count", "0"], "--min-count must be at least 1"),
])
def test_cli_check_errors_are_one_line(cli, root, argv, words):
    code, out, err = cli(*argv, "--root", root)
    assert code == 2 and out == ""
    assert err.startswith("scenetalk data: error: ") and words in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cli_check_malformed_file(cli, root):
    path = root / "flickr8k" / "dataset_flickr8k.json"
    path.write_text('{"images": [}')
    code, _, err = cli("data", "check", "flickr8k", "--root", root)
    assert code == 2
    assert err == f"scenetalk data: error: {path}: line 1 column 13: invalid JSON: Expecting value\n"


def test_cli_list(cli, root):
    code, out, _ = cli("data", "list", "--root", root)
    assert code == 0
    for name, info in DATASETS.items():
        assert f"\n{name}" in out and info.description in out
    assert "flickr30k  (not found)" in out and "flickr8k  (not found)" not in out
    assert str(root / "flickr8k" / "dataset_flickr8k.json") in out
