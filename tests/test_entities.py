"""Flickr30K Entities loader: hand-written files, and the real data for the Flickr8K test split."""

from __future__ import annotations

import numpy as np
import pytest

from scenetalk.data.entities import EntityImage, load_entities, summary
from scenetalk.data.readers import read_lines
from scenetalk.errors import DataError, ScenetalkError

NAME = "1234_abcdef0123.jpg"

# 500x375 photo. Chain 2 has two boxes, one shared with chain 5; chain 3 has no box;
# chain 4 is a scene without box; chain 6's box reaches outside the photo.
XML = """<annotation>
  <filename>1234.jpg</filename>
  <size><width>500</width><height>375</height><depth>3</depth></size>
  <object><name>1</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>500</xmax><ymax>375</ymax></bndbox></object>
  <object><name>2</name><bndbox><xmin>251</xmin><ymin>1</ymin><xmax>500</xmax><ymax>188</ymax></bndbox></object>
  <object><name>2</name><name>5</name>
    <bndbox><xmin>1</xmin><ymin>188</ymin><xmax>250</xmax><ymax>375</ymax></bndbox></object>
  <object><name>3</name><scene>0</scene><nobndbox>1</nobndbox></object>
  <object><name>4</name><scene>1</scene><nobndbox>1</nobndbox></object>
  <object><name>6</name><bndbox><xmin>0</xmin><ymin>10</ymin><xmax>600</xmax><ymax>20</ymax></bndbox></object>
</annotation>
"""

SENTENCES = (
    "[/EN#1/people A child] in [/EN#2/clothing/other a pink dress] sits in [/EN#4/scene the park] .\n"
    "\n"
    "[/EN#3/people Someone] 's [/EN#0/notvisual turn] with [/EN#5/other a t-shirt] and "
    "[/EN#6/other a stripe] .\n"
)


def write(root, flickr_id="1234", xml=XML, sentences=SENTENCES):
    (root / "Annotations").mkdir(exist_ok=True)
    (root / "Sentences").mkdir(exist_ok=True)
    if xml is not None:
        (root / "Annotations" / f"{flickr_id}.xml").write_text(xml)
    if sentences is not None:
        (root / "Sentences" / f"{flickr_id}.txt").write_text(sentences)
    return root


def load_one(root) -> EntityImage:
    return load_entities(root, [NAME])[NAME]


def test_every_field(tmp_path):
    im = load_one(write(tmp_path))
    assert (im.name, im.width, im.height) == (NAME, 500, 375)
    assert im.scene_chains == {"4"} and im.clipped_boxes == 1
    assert sorted(im.boxes) == ["1", "2", "3", "4", "5", "6"]
    np.testing.assert_array_equal(im.boxes["1"], np.float32([[0, 0, 1, 1]]))
    np.testing.assert_array_equal(im.boxes["2"], np.float32([[0.5, 0, 1, 188 / 375], [0, 187 / 375, 0.5, 1]]))
    np.testing.assert_array_equal(im.boxes["5"], np.float32([[0, 187 / 375, 0.5, 1]]))
    np.testing.assert_array_equal(im.boxes["6"], np.float32([[0, 9 / 375, 1, 20 / 375]]))  # clipped
    assert im.boxes["3"].shape == im.boxes["4"].shape == (0, 4)
    assert all(b.dtype == np.float32 for b in im.boxes.values())

    first, second = im.sentences
    assert first.text == "A child in a pink dress sits in the park ."
    assert first.tokens == "a child in a pink dress sits in the park".split()
    assert (first.line, second.line, first.retokenized) == (1, 3, False)
    got = [(p.text, p.tokens, p.start, p.end, p.chain_id, p.types, p.scene) for p in first.phrases]
    assert got == [
        ("A child", ["a", "child"], 0, 2, "1", ["people"], False),
        ("a pink dress", ["a", "pink", "dress"], 3, 6, "2", ["clothing", "other"], False),
        ("the park", ["the", "park"], 8, 10, "4", ["scene"], True),
    ]
    assert first.phrases[1].boxes is im.boxes["2"]
    assert first.phrases[2].boxes.shape == (0, 4)

    assert second.text == "Someone 's turn with a t-shirt and a stripe ."
    assert second.tokens == "someone s turn with a t shirt and a stripe".split()
    got = [(p.tokens, p.start, p.chain_id, p.types, p.scene, len(p.boxes)) for p in second.phrases]
    assert got == [
        (["someone"], 0, "3", ["people"], False, 0),
        (["turn"], 2, "0", ["notvisual"], False, 0),
        (["a", "t", "shirt"], 4, "5", ["other"], False, 1),
        (["a", "stripe"], 8, "6", ["other"], False, 1),
    ]
    for sentence in im.sentences:
        for p in sentence.phrases:
            assert sentence.tokens[p.start:p.end] == p.tokens
    with pytest.raises(ValueError):  # shared by the chain's phrases, so read-only
        im.boxes["2"][0, 0] = 0.3


def test_summary(tmp_path):
    s = summary(load_entities(write(tmp_path), [NAME]))
    assert {k: s[k] for k in ("images", "sentences", "phrases", "phrases_with_boxes",
                              "notvisual_phrases", "scene_phrases", "chain_boxes", "clipped_boxes",
                              "retokenized_sentences")} == {
        "images": 1, "sentences": 2, "phrases": 7, "phrases_with_boxes": 4, "notvisual_phrases": 1,
        "scene_phrases": 1, "chain_boxes": 5, "clipped_boxes": 1, "retokenized_sentences": 0}
    assert s["types"] == {"other": {"phrases": 3, "with_boxes": 3}, "people": {"phrases": 2, "with_boxes": 1},
                          "clothing": {"phrases": 1, "with_boxes": 1}, "scene": {"phrases": 1, "with_boxes": 0},
                          "notvisual": {"phrases": 1, "with_boxes": 0}}


def test_bracket_cutting_a_word_is_retokenized(tmp_path):
    # "man's" is one token "mans" in the sentence but "man" + "s" piece by piece.
    write(tmp_path, sentences="A [/EN#1/people man]'s [/EN#2/clothing hat] .\n[/EN#1/people A man] .\n")
    first, second = load_one(tmp_path).sentences
    assert first.retokenized and not second.retokenized
    assert first.tokens == ["a", "mans", "hat"]
    assert [(p.tokens, p.start) for p in first.phrases] == [(["mans"], 1), (["hat"], 2)]
    write(tmp_path, sentences="foo[/EN#1/people bar] [/EN#2/other baz]qux\n")
    (sentence,) = load_one(tmp_path).sentences
    assert sentence.tokens == ["foobar", "bazqux"]
    assert [(p.tokens, p.start) for p in sentence.phrases] == [(["foobar"], 0), (["bazqux"], 1)]
    assert summary([load_one(tmp_path)])["retokenized_sentences"] == 1


def one_line_error(excinfo, *parts):
    message = str(excinfo.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, message


def test_missing_files(tmp_path):
    write(tmp_path, sentences=None)
    with pytest.raises(DataError) as excinfo:
        load_entities(tmp_path, [NAME])
    one_line_error(excinfo, str(tmp_path / "Sentences" / "1234.txt"), "not found", NAME)
    write(tmp_path, flickr_id="99", xml=XML)
    images = load_entities(tmp_path, ["99_ff.jpg", NAME, "77_aa.jpg"], missing="skip")
    assert list(images) == ["99_ff.jpg"]
    assert len(images.problems) == 2 and NAME in images.problems[0] and "77.xml" in images.problems[1]
    with pytest.raises(ValueError):
        load_entities(tmp_path, [NAME], missing="ignore")
    with pytest.raises(ScenetalkError, match="not a Flickr photo name"):
        load_entities(tmp_path, ["photo.png"])


@pytest.mark.parametrize("xml, parts", [
    (XML[:200], ["invalid XML", "line"]),
    (XML.replace("<xmax>500</xmax><ymax>188", "<xmax>250</xmax><ymax>188"), ["object 2 (chain 2)", "inverted box"]),
    (XML.replace("<xmin>0</xmin><ymin>10</ymin>", "<xmin>501</xmin><ymin>10</ymin>"),
     ["object 6 (chain 6)", "outside the 500x375 photo"]),
    (XML.replace("<xmin>251</xmin>", "<xmin>a</xmin>"), ["object 2", "<xmin> 'a' is not a number"]),
    (XML.replace("<width>500</width>", ""), ["<size>", "<size/width> missing"]),
    (XML.replace("<scene>1</scene>", "<scene>yes</scene>"), ["object 5 (chain 4)", "expected 0 or 1"]),
    (XML.replace("<name>3</name><scene>0</scene><nobndbox>1</nobndbox>", "<name>3</name>"),
     ["object 4 (chain 3)", "neither <bndbox>"]),
])
def test_bad_xml(tmp_path, xml, parts):
    write(tmp_path, xml=xml)
    with pytest.raises(DataError) as excinfo:
        load_one(tmp_path)
    one_line_error(excinfo, str(tmp_path / "Annotations" / "1234.xml"), *parts)


@pytest.mark.parametrize("text, parts", [
    ("[/EN#1/people A child] in ] .", ["line 1", "unmatched ']'"]),
    ("ok .\n[/EN#1 A child] .", ["line 2", "malformed phrase"]),
    ("[/EN#1/people A [/EN#2/other child]] .", ["line 1", "malformed phrase"]),
    ("[/EN#1/people//other A child] .", ["line 1", "empty phrase type"]),
    ("[/EN#1/people ,] .", ["line 1", "has no words"]),
])
def test_bad_sentences(tmp_path, text, parts):
    write(tmp_path, sentences=text + "\n")
    with pytest.raises(DataError) as excinfo:
        load_one(tmp_path)
    one_line_error(excinfo, str(tmp_path / "Sentences" / "1234.txt"), *parts)


@pytest.mark.shared_data
@pytest.mark.slow
def test_flickr8k_test_images(shared_data):
    root = shared_data / "flickr30k_entities"
    if not (root / "Annotations").is_dir():
        pytest.skip(f"Flickr30K Entities not found at {root}")
    names = [line.strip() for _, line in read_lines(shared_data / "flickr8k" / "Flickr8k_text"
                                                    / "Flickr_8k.testImages.txt")]
    images = load_entities(root, names)
    assert len(images) == 1000 and not images.problems
    for im in images.values():
        assert len(im.sentences) == 5
        boxes = np.concatenate(list(im.boxes.values()))
        assert len(boxes) >= 1, im.name  # the data README: every test image has a box
        assert ((boxes >= 0) & (boxes <= 1)).all(), im.name
        assert ((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])).all(), im.name
        for sentence in im.sentences:
            for p in sentence.phrases:
                assert sentence.tokens[p.start:p.end] == p.tokens, (im.name, sentence.line)
    s = summary(images)
    # Our parse of the release; a change means the loader or the tokenizer changed.
    assert (s["sentences"], s["phrases"], s["phrases_with_boxes"], s["notvisual_phrases"]) == (5000, 15657, 13063, 869)
    assert (s["clipped_boxes"], s["retokenized_sentences"]) == (0, 0)
