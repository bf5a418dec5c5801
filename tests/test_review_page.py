"""``report.html`` (keras_frcnn.inference.review_page) on small hand-made data: its HTML structure (plain
tests, run everywhere), and the page itself in headless Chromium driven by Playwright (skipped
unless /usr/bin/chromium and the ``playwright`` package are installed).

The data: three generated images; hand-made detections and ground truth whose outcomes are
known: in cell_a a correct 1-l, a 1-r given the label 1-l (wrong label), a false Y, an uncertain
2-l (0.41, below the evaluation score) over the X-l, which is therefore missed; in cell_b two
correct boxes; in "cell c&1.png" (a name to escape) one false 3-l and no ground truth boxes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.parse
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest

from keras_frcnn.annotations.records import ImageRecord
from keras_frcnn.inference.detections import Detections
from keras_frcnn.evaluation import confusion_summary
from keras_frcnn.inference.review_page import (
    CORRECT,
    FALSE,
    WRONG,
    describe_model,
    image_outcomes,
    picture_names,
    write_review_page,
)

CLASSES = ("1-l", "1-r", "2-l", "2-r", "3-l", "X-l", "Y")
SIZES = {"cell_a.png": (150, 200), "cell_b.png": (220, 160), "cell c&1.png": (180, 240)}  # (height, width)
TRUTH = {
    "cell_a.png": [((20, 20, 40, 90), "1-l"), ((50, 20, 70, 90), "1-r"), ((100, 30, 120, 100), "X-l")],
    "cell_b.png": [((30, 40, 50, 120), "2-l"), ((70, 40, 90, 120), "2-r")],
    "cell c&1.png": [],
}
FOUND = {
    "cell_a.png": [((21, 19, 41, 91), "1-l", 0.95), ((50, 21, 70, 89), "1-l", 0.72),
                   ((150, 100, 190, 140), "Y", 0.61), ((100, 31, 120, 99), "2-l", 0.41)],
    "cell_b.png": [((30, 41, 50, 119), "2-l", 0.88), ((71, 40, 91, 121), "2-r", 0.55)],
    "cell c&1.png": [((10, 10, 40, 60), "3-l", 0.66)],
}
LOW_CONFIDENCE = 0.5
START_THRESHOLD = 0.5

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ENABLE = ("browser tests of report.html need Chromium and Playwright for Python: apt-get install chromium "
          "(gives /usr/bin/chromium, or set CHROMIUM=path) and pip install playwright (the package only; "
          "'playwright install' is not needed)")


def all_scores() -> list[float]:
    return [score for found in FOUND.values() for *_, score in found]


# ----------------------------------------------------------------------------- data
def make_data(folder: Path) -> tuple[list[ImageRecord], list[Detections]]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    truth, found = [], []
    for name, (height, width) in SIZES.items():
        image = np.full((height, width, 3), 225, np.uint8) + rng.integers(0, 12, (height, width, 3), dtype=np.uint8)
        for (x1, y1, x2, y2), _ in TRUTH[name]:
            image[y1:y2, x1:x2] = 60
            image[y1:y2:6, x1:x2] = 120  # bands
        if name == "cell_b.png":
            image[:, :, 0] = image[:, :, 2] // 2  # a colour image (the others: grey)
        path = folder / name
        assert cv2.imwrite(str(path), image)
        boxes = [box for box, _ in TRUTH[name]]
        truth.append(ImageRecord(str(path), np.asarray(boxes, np.float32).reshape(-1, 4),
                                 tuple(label for _, label in TRUTH[name])))
        found.append(Detections(str(path), [box for box, _, _ in FOUND[name]], [s for *_, s in FOUND[name]],
                                [label for _, label, _ in FOUND[name]]))
    return truth, found


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[list[ImageRecord], list[Detections]]:
    return make_data(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def page(tmp_path_factory, data) -> Path:
    truth, found = data
    out = tmp_path_factory.mktemp("report")
    path = write_review_page(
        out, images=truth, detections=found, ground_truth=truth, class_names=CLASSES,
        model_info={"Model": "hand-made detections"}, seconds_per_image=[0.25, 0.5, 0.75], program="pytest",
        score_threshold=START_THRESHOLD, low_confidence=LOW_CONFIDENCE,
    )
    return Path(path)


class Elements(HTMLParser):
    """Start tags (name, attributes) in order, and the text of every <title> inside an SVG group."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.titles: list[str] = []
        self._in_title = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_title = tag == "title" and any(t == "g" for t, _ in self.tags[-2:-1])

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.titles.append(data)

    def find(self, tag: str, css: str | None = None) -> list[dict]:
        return [a for t, a in self.tags if t == tag and (css is None or css in (a.get("class") or "").split())]


def page_data(text: str) -> dict:
    """What the page's script draws (its JSON data block): labels, settings and, per image, the boxes."""
    start = text.index('<script type="application/json" id="review-data">')
    start = text.index(">", start) + 1
    block = text[start:text.index("</script>", start)]
    assert "</" not in block and "<!--" not in block  # safe inside <script>
    return json.loads(block)


def drawn_boxes(text: str) -> list[dict]:
    """Every detection box the script draws: label, score, outcome code, matched truth label, image number."""
    data = page_data(text)
    labels = data["labels"]
    return [{"label": labels[b[4]], "score": score, "outcome": b[5], "truth": labels[b[8]] if b[8] >= 0 else None,
             "image": i + 1}
            for i, image in enumerate(data["images"]) for b, score in zip(image["b"], image["s"])]


def missed_boxes(text: str) -> list[str]:
    data = page_data(text)
    return [data["labels"][m[4]] for image in data["images"] for m in image["m"]]


@pytest.fixture(scope="module")
def parsed(page: Path) -> Elements:
    return Elements(page.read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- plain tests
def test_page_holds_every_detection_with_its_label_and_score(page: Path, parsed: Elements, data):
    _, found = data
    text = page.read_text(encoding="utf-8")
    boxes = drawn_boxes(text)
    assert Counter(b["label"] for b in boxes) == Counter(label for d in found for label in d.labels)
    assert sorted(b["score"] for b in boxes) == pytest.approx(sorted(all_scores()))
    for image in page_data(text)["images"]:
        assert image["s"] == sorted(image["s"])  # drawn lowest score first: the surest on top
        assert len(image["s"]) == len(image["b"])
    # the counts shown before the slider moves
    shown = sum(s >= START_THRESHOLD for s in all_scores())
    assert f'<span class="muted" id="shown-total"><b>{shown}</b> of {len(all_scores())} detections shown' in text
    assert [int(s) for s in re.findall(r'<span class="shown" id="n\d+">(\d+)</span>', text)] == [
        sum(s >= START_THRESHOLD for *_, s in FOUND[name]) for name in SIZES]
    assert page_data(text)["low"] == LOW_CONFIDENCE


def test_outcomes_missed_and_false_boxes_are_marked(page: Path):
    text = page.read_text(encoding="utf-8")
    boxes = drawn_boxes(text)
    assert missed_boxes(text) == ["X-l"]
    assert sorted(b["label"] for b in boxes if b["outcome"] == FALSE) == ["3-l", "Y"]
    assert [(b["label"], b["truth"]) for b in boxes if b["outcome"] == WRONG] == [("1-l", "1-r")]
    assert sum(b["outcome"] == CORRECT for b in boxes) == 3
    assert [b["label"] for b in boxes if b["outcome"] == "b"] == ["2-l"]  # 0.41: below the evaluation score


def test_outcomes_add_up_to_the_confusion_matrix(data):
    truth, found = data
    outcomes = image_outcomes(truth, found, CLASSES)
    matrix = confusion_summary(truth, found, CLASSES).matrix
    status = [s for o in outcomes.values() for s in o.status]
    classes = [c for c in matrix.columns if c != "missed"]
    assert sum(len(o.missed) for o in outcomes.values()) == matrix["missed"].sum() == 1
    assert status.count(FALSE) == matrix.loc["background", classes].sum() == 2
    diagonal = sum(matrix.at[c, c] for c in classes)
    assert status.count(CORRECT) == diagonal == 3
    assert status.count(WRONG) == matrix.loc[classes, classes].values.sum() - diagonal == 1


def test_sections_index_summary_and_tables(page: Path, parsed: Elements):
    text = page.read_text(encoding="utf-8")
    sections = parsed.find("section", "img")
    assert [s["id"] for s in sections] == ["i1", "i2", "i3"]
    assert [a["href"] for a in parsed.find("a", "th")] == ["#i1", "#i2", "#i3"]
    for name in SIZES:
        assert name.replace("&", "&amp;") in text
    assert "cell c&1" not in text  # escaped everywhere
    # summary: images, time per image, headline metrics
    assert ">Time per image</span><b>0.500 s</b>" in text
    for metric in ("VOC mAP", "COCO AP", "AP50", "AP75"):
        assert f"<span>{metric}</span>" in text
    header = [th["data-k"] for th in parsed.find("th") if "data-k" in th]
    assert header == ["class", "ap", "coco", "precision", "recall", "n_gt", "n_det"]
    assert len(parsed.find("table", "cm")) == 1
    # draft karyotype beside each image
    assert text.count('class="iscn"') == 3 and "Draft karyotype" in text


def test_page_is_self_contained(page: Path, parsed: Elements):
    text = page.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text and "@import" not in text
    assert len(parsed.find("link")) == 1 and parsed.find("link")[0]["href"].startswith("data:")  # no favicon fetch
    assert not parsed.find("script", None) or all("src" not in s for s in parsed.find("script"))
    images = parsed.find("img")
    assert len(images) == 6  # three pictures (lazy) and three thumbnails (their src set by the script)
    assert sum(image.get("loading") == "lazy" for image in images) == 3
    for image in images:
        src = urllib.parse.unquote(image.get("src") or image["data-src"])
        assert not os.path.isabs(src) and (page.parent / src).is_file()
    pictures = sorted(p.name for p in (page.parent / "report_images").glob("*.jpg"))
    assert pictures == sorted(picture_names(list(SIZES)))
    assert not [p for p in page.parent.rglob("*") if ".tmp" in p.name]


def test_pictures_are_downscaled_and_boxes_keep_image_coordinates(tmp_path: Path, data):
    truth, found = data
    write_review_page(tmp_path, images=truth[:1], detections=found[:1], max_side=100, thumb_side=40)
    picture = cv2.imread(str(tmp_path / "report_images" / "cell_a.jpg"))
    thumb = cv2.imread(str(tmp_path / "report_images" / "thumbs" / "cell_a.jpg"))
    assert picture.shape[:2] == (75, 100) and max(thumb.shape[:2]) == 40
    svg = Elements((tmp_path / "report.html").read_text()).find("svg", "ov")
    assert svg[0]["viewbox"] == "0 0 200 150"  # the original size


def test_without_ground_truth_there_are_no_outcomes_or_tables(tmp_path: Path, data):
    truth, found = data
    path = write_review_page(tmp_path, images=[r.path for r in truth], detections=found)
    text = Path(path).read_text()
    boxes = drawn_boxes(text)
    assert len(boxes) == len(all_scores()) and not missed_boxes(text)
    assert {b["outcome"] for b in boxes} == {""}
    assert not Elements(text).find("table") and 'id="colour"' not in text


def test_missing_image_is_named_with_its_boxes_and_no_picture(tmp_path: Path):
    found = [Detections("absent/cell_z.png", [(10, 10, 30, 70)], [0.9], ["1-l"])]
    path = write_review_page(tmp_path, detections=found)
    text = Path(path).read_text()
    assert "cell_z.png" in text and "image not available" in text
    assert not Elements(text).find("img") and len(drawn_boxes(text)) == 1
    assert 'viewBox="0 0 38 78"' in text  # big enough for its boxes


def test_detections_are_paired_by_path_and_extra_images_are_added(tmp_path: Path, data):
    truth, found = data
    extra = Detections("elsewhere/other.png", [(1, 1, 9, 9)], [0.7], ["Y"])
    path = write_review_page(tmp_path, images=truth, detections=[extra, found[1], found[0]], ground_truth=truth)
    text = Path(path).read_text()
    assert len(Elements(text).find("section", "img")) == 4  # the three images, then the extra one
    boxes = drawn_boxes(text)
    assert [len([b for b in boxes if b["image"] == i]) for i in (1, 2, 3, 4)] == [len(found[0]), len(found[1]), 0, 1]
    assert boxes[-1]["outcome"] == FALSE
    assert "not in the ground truth" in page_data(text)["images"][3]["side"]


def test_karyotypes_must_match_the_images(tmp_path: Path, data):
    truth, found = data
    with pytest.raises(ValueError, match="1 karyotypes for 3 images"):
        write_review_page(tmp_path, images=truth, detections=found, karyotypes=[object()])


def test_picture_names_are_distinct_and_url_safe():
    assert picture_names(["a/x.png", "b/X.tif", "c d&e.png", "ü.png", "a/#.png"]) == [
        "x.jpg", "X_2.jpg", "c_d_e.jpg", "ü.jpg", "image.jpg"]


def test_describe_model_reads_a_run_folder_and_tolerates_the_rest(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.keras").write_bytes(b"not really a model")
    (run / "config.json").write_text(json.dumps({
        "model": {"network": "resnet50", "class_names": list(CLASSES)},
        "training": {"optimizer": "adamax"},
        "data": {"path": "/data/train.csv", "train_images": 90, "val_images": 10},
    }))
    (run / "state.json").write_text(json.dumps({"epoch": 12, "best_val_mAP": 0.8125, "best_epoch": 9}))
    info = describe_model(str(run))
    assert info["Network"] == "resnet50"
    assert info["Classes"].startswith("7 (1-l, 1-r, 2-l, ..., Y)")
    assert info["Training data"] == "/data/train.csv (90 training + 10 validation images)"
    assert info["Training"] == "adamax, 12 epochs, best validation mAP 0.812 (epoch 9)"
    assert info["Trained"].endswith("(best.keras)")
    assert describe_model(str(run / "best.keras"))["Network"] == "resnet50"  # config.json beside the file

    bare = tmp_path / "bare.keras"
    bare.write_bytes(b"x")
    info = describe_model(str(bare), network="tiny", class_names=["a", "b"])
    assert info["Network"] == "tiny" and info["Classes"] == "2 (a, b)" and "bare model file" in info["Run folder"]
    (run / "config.json").write_text("{broken")
    assert describe_model(str(run), network="vgg16")["Network"] == "vgg16"
    assert describe_model(str(tmp_path / "absent.keras"))["Model"].endswith("absent.keras")
    assert describe_model(detections_file="d.csv") == {"Detections": "d.csv (read from a file, no model run)"}


# ----------------------------------------------------------------------------- in the browser
@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not found; {ENABLE}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(f"the playwright package is not installed; {ENABLE}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Problems(list):
    """Console errors, page errors and failed requests of one page."""

    def watch(self, tab) -> None:
        tab.on("console", lambda msg: self.append(f"console: {msg.text}") if msg.type == "error" else None)
        tab.on("pageerror", lambda err: self.append(f"page error: {err}"))
        tab.on("requestfailed", lambda req: self.append(f"request failed: {req.url} ({req.failure})"))
        tab.on("response", lambda res: self.append(f"HTTP {res.status}: {res.url}") if res.status >= 400 else None)


@pytest.fixture
def tab(browser, page: Path):
    problems = Problems()
    tab = browser.new_page(viewport={"width": 1280, "height": 900})
    problems.watch(tab)
    tab.goto(page.as_uri(), wait_until="load")
    # each section's boxes and details are drawn when it comes near the screen: scroll through the page
    for i in range(tab.locator("section.img").count()):
        tab.locator("section.img").nth(i).scroll_into_view_if_needed()
    tab.wait_for_function("document.querySelectorAll('section.img[data-drawn]').length === 3")
    tab.evaluate("window.scrollTo(0, 0)")
    yield tab, problems
    tab.close()


def visible(tab, selector: str) -> list[str]:
    """``data-l`` of the elements matching ``selector`` that are displayed."""
    return tab.eval_on_selector_all(
        selector, "els => els.filter(e => getComputedStyle(e).display !== 'none').map(e => e.getAttribute('data-l'))")


def load_every_image(tab) -> list[dict]:
    """Scroll each image into view (they load lazily) and wait until it has loaded or failed."""
    count = tab.locator("img").count()
    for i in range(count):
        image = tab.locator("img").nth(i)
        image.scroll_into_view_if_needed()
        tab.wait_for_function("img => img.hasAttribute('src') && img.complete", arg=image.element_handle())
    return tab.eval_on_selector_all("img", "els => els.map(e => ({src: e.getAttribute('src'), w: e.naturalWidth}))")


def test_page_loads_every_image_without_errors(tab):
    tab, problems = tab
    images = load_every_image(tab)
    assert len(images) == 6 and all(image["w"] > 0 for image in images), images
    assert problems == []


def test_boxes_drawn_are_the_detections(tab, data):
    tab, problems = tab
    _, found = data
    assert Counter(tab.eval_on_selector_all("svg.ov g.d", "els => els.map(e => e.getAttribute('data-l'))")) == \
        Counter(label for d in found for label in d.labels)
    titles = tab.eval_on_selector_all("svg.ov g.d > title", "els => els.map(e => e.textContent)")
    assert sorted(float(t.split(" · score ")[1].split(" ")[0]) for t in titles) == pytest.approx(sorted(all_scores()))
    # drawn where the detection is: the first box of cell_a, scaled from image to screen pixels
    figure = tab.locator("#i1 .fig").bounding_box()
    box = tab.locator("#i1 g.d", has=tab.locator("title", has_text="score 0.950")).locator("rect").first.bounding_box()
    scale = figure["width"] / SIZES["cell_a.png"][1]
    assert box["x"] - figure["x"] == pytest.approx(21 * scale, abs=2)
    assert box["width"] == pytest.approx(20 * scale, abs=3)
    # uncertain boxes are dashed, the others not
    dashes = tab.eval_on_selector_all(
        "svg.ov g.d", "els => els.map(e => [parseFloat(e.dataset.s), getComputedStyle(e.querySelector('rect'))"
        ".strokeDasharray])")
    assert all((dash != "none") == (score < LOW_CONFIDENCE) for score, dash in dashes), dashes
    assert problems == []


def test_slider_shows_the_boxes_scoring_above_it(tab):
    tab, problems = tab
    scores = all_scores()
    assert len(visible(tab, "svg.ov g.d")) == sum(s >= START_THRESHOLD for s in scores)
    slider = tab.locator("#score")
    for threshold in ("0", "0.6", "0.7", "0.9", "1", "0.55"):
        slider.fill(threshold)
        expected = sum(s >= float(threshold) for s in scores)
        assert len(visible(tab, "svg.ov g.d")) == expected, threshold
        assert tab.locator("#shown-total b").inner_text() == str(expected)
        assert tab.locator("#score-value").inner_text() == f"{float(threshold):.2f}"
    assert tab.locator("#n1").inner_text() == str(sum(s >= 0.55 for *_, s in FOUND["cell_a.png"]))
    # moved with the keyboard as a user would: 0.55 -> 0.70 in 0.01 steps
    slider.focus()
    for _ in range(15):
        tab.keyboard.press("ArrowRight")
    assert tab.locator("#score-value").inner_text() == "0.70"
    assert len(visible(tab, "svg.ov g.d")) == sum(s >= 0.7 for s in scores)
    # the missed ground truth is not a detection: the slider leaves it alone
    assert visible(tab, "svg.ov g.m") == ["X-l"]
    assert problems == []


def test_clicking_a_header_sorts_the_per_class_table(tab, data):
    tab, problems = tab
    truth, found = data
    from keras_frcnn.evaluation import evaluate

    per_class = evaluate(truth, found, CLASSES)["voc"]["per_class"]

    def column(index: int) -> list[str]:
        return tab.eval_on_selector_all(f"#per-class tbody tr td:nth-child({index})",
                                        "els => els.map(e => e.textContent)")

    assert column(1) == list(per_class)  # karyotype order at first
    recall = tab.locator("#per-class th", has_text="Recall")
    recall.click()
    assert recall.get_attribute("aria-sort") == "ascending"
    values = [(row["recall"], name) for name, row in per_class.items()]
    known = sorted(v for v, _ in values if v is not None)
    assert column(5) == [f"{v:.3f}" for v in known] + ["—"] * sum(v is None for v, _ in values)
    recall.click()
    assert recall.get_attribute("aria-sort") == "descending"
    assert column(5) == [f"{v:.3f}" for v in reversed(known)] + ["—"] * sum(v is None for v, _ in values)
    tab.locator("#per-class th", has_text="Class").click()
    assert column(1) == list(per_class)
    assert problems == []


def test_missed_and_false_boxes_have_their_classes_and_colours(tab):
    tab, problems = tab
    tab.locator("#score").fill("0")
    assert visible(tab, "svg.ov g.m") == ["X-l"]
    assert sorted(visible(tab, "svg.ov g.o-f")) == ["3-l", "Y"]
    assert visible(tab, "svg.ov g.o-w") == ["1-l"]
    colour = "g => getComputedStyle(g.querySelector('rect')).stroke"
    strokes = {kind: tab.locator(f"svg.ov g.{kind}").first.evaluate(colour) for kind in ("m", "o-f", "o-w", "o-c")}
    assert len(set(strokes.values())) == 4, strokes  # each outcome in its own colour
    titles = {kind: tab.locator(f"svg.ov g.{kind} > title").first.text_content() for kind in ("m", "o-w", "o-f")}
    assert titles["m"].startswith("missed: X-l (ground truth;")
    assert titles["o-w"] == "1-l · score 0.720 · wrong label: truth 1-r"
    assert titles["o-f"].endswith("false detection: no chromosome here")
    # the legend's check boxes hide and show an outcome
    tab.locator("label.lg", has_text="missed").locator("input").uncheck()
    assert visible(tab, "svg.ov g.m") == []
    tab.locator("label.lg", has_text="missed").locator("input").check()
    assert visible(tab, "svg.ov g.m") == ["X-l"]
    # the thumbnail index leads to the image's section
    tab.locator("a.th").nth(2).click()
    assert tab.evaluate("location.hash") == "#i3"
    assert tab.locator("#i3 .head").is_visible()
    assert problems == []


def test_screenshot(tab, tmp_path: Path):
    tab, problems = tab
    load_every_image(tab)
    tab.add_style_tag(content="section.img{content-visibility:visible}")  # lay out every section in the capture
    tab.evaluate("window.scrollTo(0, 0)")
    shot = tmp_path / "review_page.png"
    tab.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    shutil.copyfile(shot, "/tmp/review_page.png")
    assert problems == []


def test_large_page_draws_sections_when_reached_and_counts_them_all(browser, data, tmp_path: Path):
    truth, found = data
    copies = 30
    path = write_review_page(tmp_path, images=truth * (copies // 3), detections=found * (copies // 3),
                             score_threshold=0.0)
    problems = Problems()
    tab = browser.new_page(viewport={"width": 1280, "height": 800})
    problems.watch(tab)
    try:
        tab.goto(Path(path).as_uri(), wait_until="load")
        tab.wait_for_function("document.querySelectorAll('section.img[data-drawn]').length > 0")
        assert tab.locator("section.img[data-drawn]").count() < copies  # the far ones wait
        tab.locator("#score").fill("0.6")
        expected = (copies // 3) * sum(s >= 0.6 for s in all_scores())
        assert tab.locator("#shown-total b").inner_text() == str(expected)  # drawn or not
        assert tab.locator(f"#n{copies}").text_content() == str(sum(s >= 0.6 for *_, s in FOUND["cell c&1.png"]))
        tab.locator("a.th").nth(copies - 1).click()  # the last image, from the index
        tab.wait_for_function(f"document.getElementById('i{copies}').hasAttribute('data-drawn')")
        assert len(visible(tab, f"#i{copies} svg.ov g.d")) == sum(s >= 0.6 for *_, s in FOUND["cell c&1.png"])
        assert tab.locator(f"#i{copies} .counts span").count() == 24
        tab.evaluate("reviewPage.drawAll()")
        assert tab.locator("section.img[data-drawn]").count() == copies
        assert len(visible(tab, "svg.ov g.d")) == expected
        assert problems == []
    finally:
        tab.close()
