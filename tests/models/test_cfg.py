"""The cfg reader: every problem names the file and line; real cfgs parse."""

import pytest

from yolokit.errors import ConfigError
from yolokit.models import DarknetModel, build_model, model_names, config_path
from yolokit.models.cfg import parse_cfg, format_cfg

NET = "[net]\nwidth=64\nheight=64\nchannels=3\n"
HEAD = "[convolutional]\nfilters=18\nsize=1\nactivation=linear\n[yolo]\nmask=0,1,2\nanchors=4,4, 8,8, 16,16\nclasses=1\n"


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        DarknetModel(text, "my.cfg")
    return str(info.value)


def test_unknown_layer_names_file_and_line():
    msg = error_of(NET + "[convolutional]\nfilters=4\n\n[magic]\nsize=3\n")
    assert "my.cfg:8" in msg and "[magic]" in msg


def test_unknown_key_names_line_and_key():
    msg = error_of(NET + "[convolutional]\nfilter=4\n")
    assert "my.cfg:6" in msg and "'filter'" in msg


def test_bad_value_names_line():
    msg = error_of(NET + "[convolutional]\nfilters=many\n" + HEAD)
    assert "my.cfg:6" in msg and "filters" in msg


def test_unsupported_feature_value_is_refused():
    assert "my.cfg:7" in error_of(NET + "[convolutional]\nfilters=4\nxnor=1\n" + HEAD)


def test_duplicate_key_and_missing_net():
    assert "set twice" in error_of(NET + "[convolutional]\nsize=3\nsize=1\n" + HEAD)
    # Darknet's option_find takes the first value: a repeated [net] key keeps it, and so does a layer key
    # repeated with the same value.
    model = DarknetModel(NET.replace("width=64", "width=64\nwidth=32") + "[convolutional]\nsize=1\nsize=1\n" + HEAD)
    assert model.input_size == (64, 64)
    assert "first section must be [net]" in error_of("[convolutional]\nsize=3\n")


def test_shape_errors_name_the_layer():
    assert "my.cfg:6" in error_of(NET + "[route]\nlayers=-3\n" + HEAD)          # the layers= line
    msg = error_of(NET + "[convolutional]\nfilters=17\nsize=1\n[yolo]\nmask=0,1,2\nanchors=4,4, 8,8, 16,16\nclasses=1\n")
    assert "my.cfg:8" in msg and "18 expected" in msg
    assert "no detection layer" in error_of(NET + "[convolutional]\nfilters=4\n")
    assert "unknown activation" in error_of(NET + "[convolutional]\nactivation=leeky\n" + HEAD)


def test_comments_and_format_round_trip():
    text = NET + "# a comment\n; another\n  [convolutional]  \n filters = 18 \nsize=1\n" + HEAD[HEAD.index("[yolo]"):]
    sections = parse_cfg(text)
    assert [s.kind for s in sections] == ["net", "convolutional", "yolo"]
    assert sections[1].options == {"filters": "18", "size": "1"}
    again = parse_cfg(format_cfg(sections))
    assert [s.options for s in again] == [s.options for s in sections]


def test_real_cfgs_parse(shared):
    from tests.models.conftest import FASTEST, fastest_files

    for stem in FASTEST:
        cfg, _ = fastest_files(shared, stem)
        model = DarknetModel(cfg.read_text(), str(cfg))
        assert [h.kind for h in model.heads] == ["yolo", "yolo"]
        assert [h.grid for h in model.heads] == [(10, 10), (20, 20)]


def test_every_shipped_config_builds_on_meta():
    import torch

    names = model_names()
    assert {"yolov1", "yolov2", "yolov3", "yolov2-tiny", "yolov3-tiny", "yolo-lite"} <= set(names)
    for name in names:
        with torch.device("meta"):                  # no memory for YOLOv1's 200M-parameter FC layer
            model = build_model(config_path(name).read_text(), source=name)
        assert model.heads and model.flops() > 0


@pytest.mark.parametrize("line, expected", [
    ("ignore_thresh = .7.", "my.cfg:13: [yolo] ignore_thresh=.7.: '.7.' is not a number"),
    ("ignore_thresh=1.5", "my.cfg:13: [yolo] ignore_thresh=1.5: 1.5 is out of range (expected 0..1)"),
    ("scale_x_y=inf", "my.cfg:13: [yolo] scale_x_y=inf: 'inf' is not a finite number"),
    ("truth_thresh=0,1", "my.cfg:13: [yolo] truth_thresh=0,1: '0,1' is not a number"),
    ("jitter=", "my.cfg:13: [yolo] jitter=: '' is not a number"),
])
def test_every_value_is_parsed_and_range_checked_at_read_time(line, expected):
    """Values the model builder never reads (training-only head keys) fail when the cfg is read, with file:line."""
    assert error_of(NET + HEAD + line + "\n") == expected


def test_negative_filters_is_one_line():
    assert error_of(NET + "[convolutional]\nfilters=-16\nsize=3\n" + HEAD) == \
        "my.cfg:6: [convolutional] filters=-16: -16 is out of range (expected >= 1)"


def test_shipped_and_shared_cfgs_pass_the_value_rules(shared):
    from pathlib import Path

    from yolokit.models.cfg import read_cfg

    # darknet_cfgs/ (the whole Darknet zoo, RNNs included) has its own test: tests/models/test_zoo.py
    paths = [config_path(n) for n in model_names()] + sorted(p for p in Path(shared).rglob("*.cfg")
                                                             if "darknet_cfgs" not in p.parts)
    assert len(paths) >= 10
    for p in paths:
        read_cfg(p)  # raises on any value a real cfg carries that the rules would refuse


def test_inline_comments_end_the_value_as_darknet_atoi_does():
    model = DarknetModel(NET + "[convolutional]\nfilters=8 ###wide\nsize=1\n[route]\nlayers=-1 # me\n" + HEAD)
    assert model.infos[0].out_shape[0] == 8


def test_recurrent_layers_refuse_in_one_line():
    msg = error_of(NET + "[rnn]\noutput=4\n")
    assert msg.startswith("my.cfg:5: [rnn]:") and "recurrent" in msg and "\n" not in msg


def test_training_recipe_reads_net_and_head_keys_with_their_lines():
    from yolokit.models.cfg import training_recipe

    text = (NET + "learning_rate=0.001\npolicy=steps\nsteps=400,450\nscales=.1,.1\nmosaic=1\n"
            + HEAD + "iou_loss=ciou\nnms_kind=diounms\nbeta_nms=0.6\n")
    recipe = training_recipe(text)
    assert recipe["net"] == {"learning_rate": 0.001, "policy": "steps", "steps": [400, 450], "scales": [0.1, 0.1],
                             "mosaic": 1}
    assert recipe["yolo"] == {"iou_loss": "ciou", "nms_kind": "diounms", "beta_nms": 0.6}
    assert recipe["where"]["net.steps"] == "<cfg>:7" and recipe["where"]["yolo.nms_kind"] == "<cfg>:19"
