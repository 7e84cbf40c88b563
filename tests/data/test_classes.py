"""DatasetInfo and the built-in VOC / CamVid class tables."""

from __future__ import annotations

import pytest

from fcnlab.data import CAMVID_INFO, VOC_INFO, DatasetInfo
from fcnlab.data.classes import voc_colormap
from fcnlab.errors import FcnlabError


def test_voc_info_matches_the_devkit_colour_map():
    assert VOC_INFO.num_classes == 21
    assert VOC_INFO.ignore_index == 255
    assert VOC_INFO.class_names[0] == "background"
    assert VOC_INFO.class_names[15] == "person"
    assert VOC_INFO.palette[:4] == ((0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0))
    assert VOC_INFO.palette[15] == (192, 128, 128)
    assert VOC_INFO.palette[20] == (0, 64, 128)
    assert voc_colormap()[255] == (224, 224, 192)  # the boundary colour of VOC label PNGs


def test_camvid_info_matches_the_readme():
    assert CAMVID_INFO.num_classes == 11
    assert CAMVID_INFO.ignore_index == 11
    assert CAMVID_INFO.class_names[0] == "Sky"
    assert CAMVID_INFO.class_names[10] == "Bicyclist"
    assert CAMVID_INFO.palette[4] == (60, 40, 222)
    assert CAMVID_INFO.palette[10] == (0, 128, 192)


def test_info_round_trips_through_plain_data():
    data = CAMVID_INFO.as_dict()
    assert data["palette"][3] == [128, 64, 128]
    assert DatasetInfo.from_dict(data) == CAMVID_INFO


def test_info_rejects_inconsistent_tables():
    with pytest.raises(FcnlabError, match="2 class names but 1 palette colours"):
        DatasetInfo("x", ("a", "b"), ((0, 0, 0),), 255)
    with pytest.raises(FcnlabError, match="ignore_index 1, which is a class index"):
        DatasetInfo("x", ("a", "b"), ((0, 0, 0), (1, 1, 1)), 1)
