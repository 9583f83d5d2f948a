"""decode_roofline: the decode speed a node's memory bandwidth allows, against hand-computed cases."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.aiplatform.ollama.plugins.filter.decode_roofline import FilterModule, decode_roofline


def test_qwen_72b_on_a_40_gb_s_node():
    # 40 GB/s / 47.4 GB = 0.8439 tok/s; x 0.65 = 0.5485
    result = decode_roofline(40e9, 47.4e9)
    assert result["roofline_tokens_per_s"] == pytest.approx(0.844, abs=1e-3)
    assert result["expected_tokens_per_s"] == pytest.approx(0.549, abs=1e-3)
    assert result["efficiency"] == 0.65 and result["bytes_per_token"] == 47_400_000_000
    assert "measured_tokens_per_s" not in result and "roofline_pct" not in result
    assert result["summary"] == ("roofline 0.84 tok/s, 0.55 tok/s expected at 65% of it "
                                 "(40.0 GB/s / 47.40 GB read per token)")


def test_a_measured_speed_as_a_share_of_the_roofline():
    # a Node annotation is a string: 12 GB/s over a 1 GB model is 12 tok/s; 6 measured is 50 %
    result = decode_roofline("12000000000", 1_000_000_000, measured_tokens_per_s=6)
    assert result["roofline_tokens_per_s"] == 12.0
    assert result["roofline_pct"] == 50.0
    assert result["summary"] == ("decode 6.00 tok/s is 50.0 % of the roofline 12.00 tok/s "
                                 "(12.0 GB/s / 1.00 GB read per token)")


def test_the_model_facts_give_the_bytes_per_token():
    # ollama_model_info's result: its weights_bytes; 30 GB/s / 1.5 GB = 20 tok/s, 7.3 of it = 36.5 %
    result = decode_roofline(30e9, {"weights_bytes": 1_500_000_000, "block_count": 16}, efficiency=1.0,
                             measured_tokens_per_s="7.3")
    assert result["roofline_tokens_per_s"] == result["expected_tokens_per_s"] == 20.0
    assert result["roofline_pct"] == 36.5


def test_a_small_model_is_shown_in_mb():
    # the test suite's tiny model: 1.2 MB; 30 GB/s / 1.2 MB = 25000 tok/s
    result = decode_roofline(30e9, 1_200_000, measured_tokens_per_s=250)
    assert result["roofline_pct"] == 1.0
    assert result["summary"].endswith("(30.0 GB/s / 1.2 MB read per token)")


def test_not_strict_returns_bad_input_as_the_reason_nothing_is_reported():
    result = decode_roofline("fast", 1e9, measured_tokens_per_s=3, strict=False)
    message = ("decode_roofline: the bandwidth must be a finite number, got 'fast' (bytes per second, as "
               "node_profile_facts measures it)")
    assert result == {"error": message, "summary": f"decode roofline not reported: {message}"}
    assert decode_roofline(12e9, 1e9, strict=False)["roofline_tokens_per_s"] == 12.0


def test_registered_as_a_filter():
    assert FilterModule().filters()["decode_roofline"] is decode_roofline


@pytest.mark.parametrize("bandwidth,per_token,kwargs,message", [
    ("fast", 1e9, {}, "decode_roofline: the bandwidth must be a finite number, got 'fast' (bytes per second, "
                      "as node_profile_facts measures it)"),
    ("", 1e9, {}, "decode_roofline: the bandwidth must be a finite number, got ''"),
    (None, 1e9, {}, "decode_roofline: the bandwidth must be a finite number, got None"),
    ("nan", 1e9, {}, "decode_roofline: the bandwidth must be a finite number, got 'nan'"),
    (True, 1e9, {}, "decode_roofline: the bandwidth must be a number, got the boolean True"),
    (0, 1e9, {}, "decode_roofline: bandwidth (0.0) and bytes per token (1000000000.0) must be positive"),
    (1e9, -5, {}, "decode_roofline: bandwidth (1000000000.0) and bytes per token (-5.0) must be positive"),
    (1e9, "1Gi", {}, "decode_roofline: bytes_per_token must be a finite number, got '1Gi'"),
    (1e9, {"name": "x"}, {}, "decode_roofline: bytes_per_token is a dict without weights_bytes: pass the model's "
                             "size in bytes or the result of aiplatform.ollama.ollama_model_info"),
    (1e9, 1e9, {"efficiency": 1.5}, "decode_roofline: efficiency must be in (0, 1], got 1.5"),
    (1e9, 1e9, {"efficiency": 0}, "decode_roofline: efficiency must be in (0, 1], got 0.0"),
    (1e9, 1e9, {"measured_tokens_per_s": -1}, "decode_roofline: measured_tokens_per_s must not be negative, got -1.0"),
    (1e9, 1e9, {"measured_tokens_per_s": "quick"}, "decode_roofline: measured_tokens_per_s must be a finite number, "
                                                  "got 'quick'"),
])
def test_bad_input_is_named(bandwidth, per_token, kwargs, message):
    with pytest.raises(AnsibleFilterError) as err:
        decode_roofline(bandwidth, per_token, **kwargs)
    assert str(err.value).startswith(message)
