"""Tests of fashionlab.models.backbones: shapes, stages, gradients, weight files (offline by default; the download
switch against an HTTP server on 127.0.0.1, never the internet)."""
from __future__ import annotations

import os

import pytest
import torch
import torchvision

from fashionlab.models import (
    BACKBONES,
    Backbone,
    GlobalPoolEmbedding,
    SmallCNN,
    backbone,
    output_size,
    pretrained_weights_file,
)

# name -> (default stage, channels, map at 224 px) as the papers use them (docs/implementations.md §2, §3, §6)
PAPER_DEFAULTS = {
    "resnet50": ("layer3", 1024, 14),  # ASEN / ASEN++ global branch
    "resnet34": ("layer3", 256, 14),   # ASEN++ local branch (7x7 at its 112 px crops)
    "resnet18": ("layer3", 256, 14),   # CSN (7x7 at 112 px)
    "vgg16": ("conv5", 512, 14),       # paper 01: everything before pool5
    "alexnet": ("features", 256, 6),   # paper 04: conv5 after the pooling layer
    "smallcnn": ("features", 128, 14),
}


@pytest.mark.parametrize("name", sorted(PAPER_DEFAULTS))
def test_default_stage_shapes_at_64px(name):
    stage, channels, at224 = PAPER_DEFAULTS[name]
    torch.manual_seed(0)
    net = backbone(name)
    assert isinstance(net, Backbone)
    assert net.stage == stage and net.out_channels == channels
    assert net.output_size(224) == (at224, at224)  # arithmetic only: no 224 px forward pass
    with torch.no_grad():
        y = net.eval()(torch.randn(2, 3, 64, 64))
    assert tuple(y.shape) == (2, *net.output_shape(64))
    assert torch.isfinite(y).all()


def test_paper_resolutions():
    assert backbone("resnet18").output_size(112) == (7, 7)  # CSN
    assert backbone("resnet34").output_size(112) == (7, 7)  # ASEN++ local branch
    assert backbone("resnet50").output_shape(224) == (1024, 14, 14)  # ASEN
    assert backbone("resnet50").stride == 16


@pytest.mark.parametrize("name", ["resnet18", "alexnet", "vgg16_bn"])
def test_every_stage_output_size_matches_forward(name):
    """The arithmetic of output_size agrees with a real forward pass, at an odd size too."""
    stages, _ = BACKBONES[name]
    for stage in stages:
        net = backbone(name, stage).eval()
        for px in (64, (67, 75)):
            h, w = (px, px) if isinstance(px, int) else px
            with torch.no_grad():
                y = net(torch.zeros(1, 3, h, w))
            assert tuple(y.shape[1:]) == net.output_shape(px), (name, stage, px)
            assert y.shape[1] == net.out_channels


def test_output_size_falls_back_to_a_forward_pass():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding="same"), torch.nn.Upsample(scale_factor=2))
    assert output_size(net, 10) == (20, 20)
    assert net.training  # mode restored


def test_resnet_prefix_keeps_torchvision_keys():
    full = set(torchvision.models.resnet18(weights=None).state_dict())
    part = set(backbone("resnet18", "layer2").state_dict())
    assert part <= full and "layer2.1.bn2.running_var" in part and not any(k.startswith("layer3") for k in part)


def test_smallcnn_size_and_maps():
    net = SmallCNN()
    n = sum(p.numel() for p in net.parameters())
    assert 100_000 <= n <= 300_000, n
    assert net.out_channels == 128 and net.stride == 16
    for px, side in ((64, 4), (96, 6), (128, 8)):
        assert net.output_size(px) == (side, side)
    assert tuple(net(torch.randn(2, 3, 96, 96)).shape) == (2, 128, 6, 6)
    small = backbone("smallcnn", width=16)
    assert small.out_channels == 64 and sum(p.numel() for p in small.parameters()) < 100_000


@pytest.mark.parametrize("name", ["smallcnn", "resnet18"])
def test_gradients_flow_through_embedding(name):
    torch.manual_seed(0)
    net = GlobalPoolEmbedding(backbone(name), dim=16)
    z = net(torch.randn(4, 3, 64, 64))
    assert z.shape == (4, 16)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(4))
    (z[:, 0] - z[:, 1]).pow(2).sum().backward()
    for pname, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


def test_embedding_without_normalisation_and_pool():
    net = GlobalPoolEmbedding(SmallCNN(width=8), dim=5, normalize=False)
    x = torch.randn(3, 3, 64, 64)
    assert net.pool(x).shape == (3, 32) and net.features(x).shape == (3, 32, 4, 4)
    assert not torch.allclose(net(x).norm(dim=1), torch.ones(3))
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))  # no out_channels attribute
    with pytest.raises(ValueError, match="in_features"):
        GlobalPoolEmbedding(plain, dim=2)
    assert GlobalPoolEmbedding(plain, dim=2, in_features=4)(x).shape == (3, 2)


def test_bad_names():
    with pytest.raises(ValueError, match="unknown backbone"):
        backbone("resnet101")
    with pytest.raises(ValueError, match="unknown stage"):
        backbone("resnet18", "layer5")
    with pytest.raises(ValueError, match="no pretrained"):
        backbone("smallcnn", pretrained=True)


def test_pretrained_missing_file_names_file_and_folder(hub_dir):
    with pytest.raises(FileNotFoundError) as err:
        backbone("resnet50", pretrained=True)
    msg = str(err.value)
    assert "resnet50-0676ba61.pth" in msg and "resnet50-11ad3fa6.pth" in msg
    assert str(hub_dir / "checkpoints") in msg
    with pytest.raises(FileNotFoundError, match="vgg16-397923af.pth"):
        backbone("vgg16", pretrained=True)
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        backbone("resnet18", weights_path=hub_dir / "nowhere.pth")


def test_pretrained_loads_from_hub_cache_and_weights_path(hub_dir, tmp_path):
    torch.manual_seed(1)
    src = torchvision.models.resnet18(weights=None)
    target = pretrained_weights_file("resnet18")
    assert target == hub_dir / "checkpoints" / "resnet18-f37072fd.pth"
    target.parent.mkdir(parents=True)
    torch.save(src.state_dict(), target)

    net = backbone("resnet18", pretrained=True)
    torch.testing.assert_close(net.conv1.weight, src.conv1.weight, rtol=0, atol=0)
    torch.testing.assert_close(net.layer3[1].bn2.running_var, src.layer3[1].bn2.running_var, rtol=0, atol=0)

    other = tmp_path / "my_weights.pth"
    torch.save({"state_dict": src.state_dict()}, other)  # a wrapped state dict is accepted too
    net2 = backbone("resnet18", "layer1", weights_path=other)
    torch.testing.assert_close(net2.layer1[0].conv1.weight, src.layer1[0].conv1.weight, rtol=0, atol=0)
    net3 = backbone("resnet18", weights_path=target.parent)  # a folder holding the torchvision file
    torch.testing.assert_close(net3.bn1.weight, src.bn1.weight, rtol=0, atol=0)


def test_pretrained_resnet50_v2_file_is_accepted(hub_dir):
    src = torchvision.models.resnet50(weights=None)
    (hub_dir / "checkpoints").mkdir(parents=True)
    torch.save(src.state_dict(), hub_dir / "checkpoints" / "resnet50-11ad3fa6.pth")
    net = backbone("resnet50", pretrained=True)
    torch.testing.assert_close(net.layer3[0].conv2.weight, src.layer3[0].conv2.weight, rtol=0, atol=0)
    with pytest.raises(FileNotFoundError, match="resnet50-0676ba61.pth"):
        backbone("resnet50", pretrained="IMAGENET1K_V1")


# ----------------------------------------------------------------------------------------------------------
# the user's choice: download with torchvision's mechanism (torch.hub), tested against a server on 127.0.0.1
# ----------------------------------------------------------------------------------------------------------
import hashlib  # noqa: E402
import http.server  # noqa: E402
import threading  # noqa: E402

from fashionlab.models import download_pretrained_weights  # noqa: E402
from fashionlab.models.backbones import WeightsDownloadError  # noqa: E402


@pytest.fixture
def weights_server(tmp_path):
    """An HTTP server on 127.0.0.1 serving the folder ``tmp_path/served``; yields (folder, base URL, request log)."""
    served = tmp_path / "served"
    served.mkdir()
    log: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(served), **k)

        def log_message(self, fmt, *args):
            log.append(self.path)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield served, f"http://127.0.0.1:{srv.server_address[1]}", log
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """TORCH_HOME in a tmp folder (torch.hub.get_dir() follows it), no proxy for 127.0.0.1, switch unset."""
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("FASHIONLAB_DOWNLOAD_WEIGHTS", "")  # off, as by default
    return home


def _point_url(monkeypatch, url):
    """Point torchvision's own ResNet18_Weights.IMAGENET1K_V1 at ``url`` (the enum's .url is read from its value)."""
    monkeypatch.setattr(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.value, "url", url)
    assert torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url == url


def _files(folder):
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_download_into_torch_home_once_and_load(weights_server, torch_home, monkeypatch):
    served, base, log = weights_server
    torch.manual_seed(3)
    src = torchvision.models.resnet18(weights=None)
    raw = served / "raw.pth"
    torch.save(src.state_dict(), raw)
    prefix = hashlib.sha256(raw.read_bytes()).hexdigest()[:8]
    fname = f"resnet18-{prefix}.pth"  # torch.hub's naming: the hash prefix it checks is in the file name
    raw.rename(served / fname)
    _point_url(monkeypatch, f"{base}/{fname}")

    with pytest.raises(FileNotFoundError) as err:  # offline by default, the message names the switch
        backbone("resnet18", pretrained=True)
    assert "FASHIONLAB_DOWNLOAD_WEIGHTS" in str(err.value) and "--download-weights" in str(err.value)
    assert log == [] and _files(torch_home) == []

    monkeypatch.setenv("FASHIONLAB_DOWNLOAD_WEIGHTS", "1")
    net = backbone("resnet18", pretrained=True)
    cached = torch_home / "hub" / "checkpoints" / fname
    assert cached.is_file() and _files(torch_home) == [fname]
    assert pretrained_weights_file("resnet18") == cached
    assert log == [f"/{fname}"]
    torch.testing.assert_close(net.layer2[0].conv1.weight, src.layer2[0].conv1.weight, rtol=0, atol=0)

    net2 = backbone("resnet18", "layer1", pretrained=True)  # second call: from the cache, no request
    assert log == [f"/{fname}"]
    torch.testing.assert_close(net2.conv1.weight, src.conv1.weight, rtol=0, atol=0)
    assert download_pretrained_weights("resnet18", progress=False) == cached and len(log) == 1

    monkeypatch.setenv("FASHIONLAB_DOWNLOAD_WEIGHTS", "1")
    cached.unlink()
    with pytest.raises(FileNotFoundError):  # download=False overrides the environment
        backbone("resnet18", pretrained=True, download=False)
    assert len(log) == 1


def test_download_404_and_wrong_hash_are_one_clear_error_and_leave_no_file(weights_server, torch_home, monkeypatch):
    served, base, log = weights_server
    url = f"{base}/resnet18-0123abcd.pth"  # not served: 404
    _point_url(monkeypatch, url)
    cache = torch_home / "hub" / "checkpoints" / "resnet18-0123abcd.pth"
    with pytest.raises(WeightsDownloadError) as err:
        download_pretrained_weights("resnet18", progress=False)
    msg = str(err.value)
    assert "404" in msg and url in msg and str(cache) in msg
    assert _files(torch_home) == []

    (served / "resnet18-0123abcd.pth").write_bytes(b"not the file whose sha256 starts with 0123abcd" * 1000)
    with pytest.raises(WeightsDownloadError) as err:
        backbone("resnet18", pretrained=True, download=True)
    msg = str(err.value)
    assert "hash" in msg and url in msg and str(cache) in msg
    assert _files(torch_home) == []  # no half-written .partial file, no misnamed file
    assert isinstance(err.value, OSError)  # the command line prints it as one line, exit status 2


def test_download_unreachable_server(torch_home, monkeypatch):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/resnet18-0123abcd.pth"
    _point_url(monkeypatch, url)
    with pytest.raises(WeightsDownloadError, match="cannot reach the server") as err:
        download_pretrained_weights("resnet18", progress=False)
    assert url in str(err.value) and _files(torch_home) == []


def test_cli_download_weights_flag_sets_the_switch(monkeypatch):
    from fashionlab import cli

    monkeypatch.setenv("FASHIONLAB_DOWNLOAD_WEIGHTS", "")  # recorded, so main()'s setting is undone afterwards
    args = cli.build_parser().parse_args(["reproduce", "x", "--download-weights"])
    assert args.download_weights is True
    assert cli.build_parser().parse_args(["reproduce", "x"]).download_weights is False
    seen = {}

    def fake_names():
        seen["env"] = os.environ.get("FASHIONLAB_DOWNLOAD_WEIGHTS")
        raise KeyError("stop here")

    import fashionlab.experiments as experiments

    monkeypatch.setattr(experiments, "get", lambda name: fake_names())
    assert cli.main(["reproduce", "x", "--download-weights"]) == 2
    assert seen["env"] == "1"
