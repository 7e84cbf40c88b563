"""LabelSpace and the built-in VOC / CamVid class tables."""

from __future__ import annotations

import pytest

from fcnlab.data import CAMVID_INFO, VOC_INFO, LabelSpace
from fcnlab.data.classes import voc_colormap
from fcnlab.errors import FcnlabError


def test_voc_info_matches_the_devkit_colour_map():
    assert VOC_INFO.num_classes == 21
    assert VOC_INFO.ignore_index == 255
    assert VOC_INFO.classes[0] == "background"
    assert VOC_INFO.classes[15] == "person"
    assert VOC_INFO.palette[:4] == ((0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0))
    assert VOC_INFO.palette[15] == (192, 128, 128)
    assert VOC_INFO.palette[20] == (0, 64, 128)
    assert voc_colormap()[255] == (224, 224, 192)  # the boundary colour of VOC label PNGs


def test_camvid_info_matches_the_readme():
    assert CAMVID_INFO.num_classes == 11
    assert CAMVID_INFO.ignore_index == 11
    assert CAMVID_INFO.classes[0] == "Sky"
    assert CAMVID_INFO.classes[10] == "Bicyclist"
    assert CAMVID_INFO.palette[4] == (60, 40, 222)
    assert CAMVID_INFO.palette[10] == (0, 128, 192)


def test_info_round_trips_through_plain_data():
    data = CAMVID_INFO.to_fields()
    assert data["palette"][3] == [128, 64, 128]
    assert data["normalization"] == {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    assert LabelSpace.from_fields(data, "test") == CAMVID_INFO
    other = CAMVID_INFO.normalized_by([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])
    assert LabelSpace.from_fields(other.to_fields(), "test") == other != CAMVID_INFO


def test_label_space_is_one_form_in_checkpoints_and_cards():
    import json

    from fcnlab.card import ModelCard
    from fcnlab.engine.checkpoint import label_space, make_checkpoint
    from fcnlab.models import create_model

    labels = CAMVID_INFO.normalized_by([0.4, 0.5, 0.6], [0.2, 0.3, 0.4])
    model = create_model("segnet_basic", labels.num_classes)
    checkpoint = make_checkpoint(model, labels, config={})
    assert label_space(checkpoint) == labels
    card = ModelCard.from_checkpoint(checkpoint)
    assert card.labels == labels and card.mean == (0.4, 0.5, 0.6)
    stored = json.loads(card.to_json())
    assert {k: stored[k] for k in labels.to_fields()} == labels.to_fields()
    assert ModelCard.from_json(card.to_json()) == card


def test_info_rejects_inconsistent_tables():
    with pytest.raises(FcnlabError, match="2 class names but 1 palette colours"):
        LabelSpace("x", ("a", "b"), ((0, 0, 0),), 255)
    with pytest.raises(FcnlabError, match="ignore_index 1, which is a class index"):
        LabelSpace("x", ("a", "b"), ((0, 0, 0), (1, 1, 1)), 1)
