"""The decoded-frame cache every training and test pipeline reads through: the same arrays as
mmaction2's RawFrameDecode, copies handed out, memory bounded."""
import numpy as np
from mmaction.registry import TRANSFORMS


def clip_results(data_dir, clip_line: str, inds) -> dict:
    frame_dir, _, _ = clip_line.split()
    return {"frame_dir": str(data_dir / "frames" / frame_dir), "filename_tmpl": "img_{:05d}.jpg",
            "modality": "RGB", "frame_inds": np.asarray(inds)}


def test_cached_frames_are_the_decoded_frames_and_copies(tiny_data):
    from petaction.models import mmconfig
    _, _, data = tiny_data
    assert mmconfig.FILENAME_TMPL == "img_{:05d}.jpg"
    lines = (data / "train.txt").read_text().split("\n")[:3]
    plain = TRANSFORMS.build(dict(type="RawFrameDecode"))
    cached = TRANSFORMS.build(dict(type="CachedRawFrameDecode"))
    for line in lines * 2:                       # the second pass reads from the cache
        inds = [1, 3, 3, 5]                      # a repeated index, as SampleFrames can give
        want = plain.transform(clip_results(data, line, inds))
        got = cached.transform(clip_results(data, line, inds))
        assert len(got["imgs"]) == len(want["imgs"]) == 4
        for a, b in zip(got["imgs"], want["imgs"]):
            np.testing.assert_array_equal(a, b)
        assert got["img_shape"] == want["img_shape"] and got["original_shape"] == want["original_shape"]
    assert len(cached.frames) == 3 * 3           # three clips, three distinct frames each
    got["imgs"][0][:] = 0                         # a later transform writing in place ...
    again = cached.transform(clip_results(data, lines[-1], [1]))
    np.testing.assert_array_equal(again["imgs"][0], want["imgs"][0])   # ... leaves the cache alone


def test_the_cache_holds_at_most_its_bound(tiny_data):
    _, _, data = tiny_data
    line = (data / "train.txt").read_text().split("\n")[0]
    one = TRANSFORMS.build(dict(type="RawFrameDecode")).transform(clip_results(data, line, [1]))["imgs"][0].nbytes
    cached = TRANSFORMS.build(dict(type="CachedRawFrameDecode", cache_mb=2.5 * one / 2 ** 20))
    cached.transform(clip_results(data, line, [1, 2, 3, 4]))
    # room for two frames: the two read last stay, the first two went out first
    assert [k[-13:] for k in cached.frames] == ["img_00003.jpg", "img_00004.jpg"] and cached.held == 2 * one
