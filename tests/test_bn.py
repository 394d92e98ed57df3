"""BN evaluation rules: which statistics normalise, and that evaluation never changes training state."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from nascore.bn import BN_RULES, bn_eval


def _net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Dropout(0.5))
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(8, 3, 6, 6))  # running stats now describe N(0,1) inputs
    return net


@pytest.mark.parametrize("rule", BN_RULES)
def test_every_rule_restores_buffers_and_mode(rule):
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    shifted = torch.randn(16, 3, 6, 6) * 5 + 3
    with bn_eval(net, rule, calibrate=lambda: net(shifted)):
        assert not net[2].training  # dropout is off in every rule
        net(shifted)
    assert net.training
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_rules_use_the_statistics_they_name():
    net = _net()
    x = torch.randn(16, 3, 6, 6) * 5 + 3  # far from what the running stats saw
    with bn_eval(net, "batch"):
        out = net[1](net[0](x))
    per_channel = out.mean(dim=(0, 2, 3))
    assert torch.allclose(per_channel, net[1].bias, atol=1e-4)  # batch stats centre each channel
    with bn_eval(net, "running"):
        far = net[1](net[0](x)).mean(dim=(0, 2, 3))
    assert not torch.allclose(far, net[1].bias, atol=1e-1)
    with bn_eval(net, "recalibrate", calibrate=lambda: net(x)):
        cal = net[1](net[0](x)).mean(dim=(0, 2, 3))
    assert torch.allclose(cal, net[1].bias, atol=1e-3)  # stats re-estimated on x itself


def test_unknown_rule_names_the_valid_ones():
    with pytest.raises(ValueError, match="running, batch, recalibrate"):
        with bn_eval(_net(), "median"):
            pass
