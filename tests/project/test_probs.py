"""engine/project/scoring/probs.py's readers: a stored P(object) map read through the guarded
image reader (as stored, resized to the image, cut at P > 0.5), and re-scoring from a damaged
map asks for a new prediction instead of failing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segtriage.engine.project.imageio import ImageError
from segtriage.engine.project.scoring import probs

from .test_review import MASK, _project, bomb_png


def test_the_8_bit_map_is_cut_at_one_half_and_resized_to_the_image(tmp_path):
    u8 = np.array([[0, 127], [128, 255]], np.uint8)
    Image.fromarray(u8, "L").save(tmp_path / "p.png")
    assert probs.read_prob_u8(tmp_path / "p.png").tolist() == [[0, 127], [128, 255]]
    assert probs.read_prediction(tmp_path / "p.png").tolist() == [[0, 0], [1, 1]]
    # a 2×2 map of one value resized to 3×4 stays that value
    Image.fromarray(np.full((2, 2), 200, np.uint8), "L").save(tmp_path / "q.png")
    got = probs.read_prob_u8(tmp_path / "q.png", (3, 4))
    assert got.shape == (3, 4) and set(got.ravel().tolist()) == {200}
    assert probs.load_prob_png(tmp_path / "p.png").tolist() == [
        [0.0, np.float32(127) / 255], [np.float32(128) / 255, 1.0]]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_map_that_is_not_an_8_bit_grey_png_is_named(tmp_path):
    Image.fromarray(np.zeros((2, 2, 3), np.uint8), "RGB").save(tmp_path / "rgb.png")
    with pytest.raises(ImageError, match=r"rgb.png: not an 8-bit greyscale probability map "
                                         r"\(uint8, 2×2×3\)"):
        probs.read_prob_u8(tmp_path / "rgb.png")
    bomb_png(tmp_path / "b.png", 20_000, 10_000)   # twice Pillow's limit: its own error
    with pytest.raises(ImageError, match="decompression bomb"):
        probs.load_prob_png(tmp_path / "b.png")
    with pytest.raises(ImageError, match=r"gone.png: cannot read"):
        probs.read_prob_u8(tmp_path / "gone.png")


def test_rescoring_from_a_damaged_map_asks_for_a_new_prediction(tmp_path):
    from segtriage.engine.project.scoring.rescore import rescore_image

    project = _project(tmp_path / "p")
    row = project.store.image("one.png")
    path = project.state / project.store.score(row.id).prob_path
    bomb_png(path, 20_000, 10_000)
    assert rescore_image(project, row.id, force=True) is False
    path.write_bytes(b"\x89PNG\r\n\x1a\n")           # cut short
    assert rescore_image(project, row.id, force=True) is False
    Image.fromarray(np.where(MASK, 255, 0).astype(np.uint8), "L").save(path)
    assert rescore_image(project, row.id, force=True) is True
    assert project.store.score(row.id).get("dice") == 1.0
