"""Several worker processes on one machine: each its own data dir and web port."""
from dataclasses import replace

import pytest

from streams.processes import process_settings
from streams.settings import Settings


def test_each_process_gets_its_own_data_dir_and_port():
    base = replace(Settings(), data_dir="/var/clv", web_port=7000)
    own = [process_settings(base, i) for i in range(3)]
    assert [s.data_dir for s in own] == ["/var/clv/p0", "/var/clv/p1", "/var/clv/p2"]
    assert [s.web_port for s in own] == [7000, 7001, 7002]
    assert [s.advertised_url for s in own][1].endswith(":7001")
    assert {s.app_id for s in own} == {base.app_id}  # one consumer group shares the partitions


def test_an_advertised_url_needs_a_port_placeholder_for_several_processes():
    base = replace(Settings(), web_port=7000, web_advertised_url="http://host-a:{port}")
    assert process_settings(base, 1).advertised_url == "http://host-a:7001"
    fixed = replace(base, web_advertised_url="http://host-a:7000")
    assert process_settings(fixed, 0).advertised_url == "http://host-a:7000"
    with pytest.raises(ValueError, match="port"):
        process_settings(fixed, 1)
