"""Dispensers declared in a CSV file named by config.toml, and tokens given only as their SHA-256."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from app import create_app
from app.config import ConfigError, load_config
from tests.helpers.auth import bearer

HEADER = "id,name,group,capacity_ml,token_sha256\n"
GROUPS = ('[[server.groups]]\nid = "nord"\nname = "CHU Nord"\n\n'
          '[[server.groups]]\nid = "cardio"\nname = "Cardiologie"\nparent = "nord"\n')


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def write(tmp_path: Path, rows: str, toml: str = "") -> Path:
    (tmp_path / "fleet").mkdir(exist_ok=True)
    (tmp_path / "fleet" / "dispensers.csv").write_text(HEADER + rows, encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text('[server]\ndatabase = "sqlite:///usage.db"\nasync_mode = "threading"\n'
                      f'dispensers_csv = "fleet/dispensers.csv"\n{toml}\n{GROUPS}', encoding="utf-8")
    return config


def test_csv_dispensers_join_the_toml_ones(tmp_path):
    toml = f'\n[[server.dispensers]]\nid = "hall"\nname = "Hall"\ntoken_sha256 = "{sha("hall-token-1")}"\n'
    cfg = load_config(write(tmp_path, f"c1,Chambre 101,cardio,500,{sha('tok-c1-xxxx')}\n"
                                      f"c2,,,,{sha('tok-c2-xxxx').upper()}\n\n", toml))
    assert [(d.id, d.name, d.group, d.capacity_ml, d.token) for d in cfg.dispensers] == [
        ("hall", "Hall", None, 300.0, None), ("c1", "Chambre 101", "cardio", 500.0, None),
        ("c2", "c2", None, 300.0, None)]
    assert cfg.token_digests[hashlib.sha256(b"tok-c2-xxxx").digest()] == "c2"  # upper-case hex accepted
    assert cfg.fleet.path("c1") == ["CHU Nord", "Cardiologie"] and cfg.fleet.path("c2") == []
    assert cfg.secrets() == []  # digests are not secrets: nothing to redact


@pytest.mark.parametrize(("rows", "message"), [
    ("c1,Chambre,cardio,-3,{h}\n", "dispensers.csv line 2: capacity_ml must be a positive number"),
    ("c1,Chambre,cardio,lots,{h}\n", "dispensers.csv line 2: capacity_ml must be a positive number"),
    ("c1,Chambre,cardio,nan,{h}\n", "dispensers.csv line 2: capacity_ml"),
    ("c1,Chambre,cardio,300,{h}\n\nc2,Chambre,cardio,300,abc\n", "dispensers.csv line 4: token_sha256 must be 64"),
    ("c1,Chambre,cardio,300,\n", "line 2: token_sha256"),
    ("c1,Chambre,ortho,300,{h}\n", "line 2: unknown group 'ortho'"),
    ("c1,Chambre,cardio,300\n", "line 2: 4 columns, expected 5"),
    (",Chambre,cardio,300,{h}\n", "line 2: id '' must be 1 to 64"),
    ("c1,A,cardio,300,{h}\nc1,B,cardio,300,{g}\n", "line 3: dispenser ids must be unique"),
    ("c1,A,cardio,300,{h}\nc2,B,cardio,300,{h}\n", "line 3: each dispenser needs its own token"),
    ('c1,"A\nB",cardio,300,{h}\nc2,B,cardio,-1,{g}\n', "line 4: capacity_ml"),  # quoted newline: real lines
])
def test_bad_lines_are_named(tmp_path, rows, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, rows.format(h=sha("token-one-1"), g=sha("token-two-2"))))


def test_bad_header_missing_file_and_clash_with_toml(tmp_path):
    config = write(tmp_path, "")
    (tmp_path / "fleet" / "dispensers.csv").write_text("id,name,capacity_ml\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="dispensers.csv line 1: the header must be id,name,group"):
        load_config(config)
    (tmp_path / "fleet" / "dispensers.csv").unlink()
    with pytest.raises(ConfigError, match="file not found"):
        load_config(config)
    toml = '\n[[server.dispensers]]\nid = "c1"\ntoken = "toml-token-000001"\n'
    with pytest.raises(ConfigError, match="line 2: dispenser ids must be unique"):
        load_config(write(tmp_path, f"c1,A,,300,{sha('other-token')}\n", toml))
    with pytest.raises(ConfigError, match="line 2: each dispenser needs its own token"):
        load_config(write(tmp_path, f"c2,A,,300,{sha('toml-token-000001')}\n", toml))


@pytest.mark.parametrize(("toml", "message"), [
    ('[[server.dispensers]]\nid = "a"\ntoken = "long-enough"\ntoken_sha256 = "{h}"\n', "either token or token_sha256"),
    ('[[server.dispensers]]\nid = "a"\n', "either token or token_sha256"),
    ('[[server.dispensers]]\nid = "a"\ntoken_sha256 = "{h}0"\n', "token_sha256 must be 64"),
    ('[[server.dispensers]]\nid = "a"\ntoken = "long-enough-token"\ngroup = "nowhere"\n', "unknown group"),
])
def test_toml_dispensers_may_give_a_digest(tmp_path, toml, message):
    path = tmp_path / "config.toml"
    path.write_text("[server]\n" + toml.format(h=sha("x")), encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_a_dispenser_known_by_its_digest_posts_and_others_do_not(tmp_path):
    app = create_app(load_config(write(tmp_path, f"c1,Chambre 101,cardio,500,{sha('tok-c1-xxxx')}\n")))
    client = app.test_client()
    use = {"gel_used": 1.5, "hands_detected": 1}
    ok = client.post("/mettre_a_jour_donnees", json=use, headers=bearer("tok-c1-xxxx"))
    assert ok.status_code == 200 and ok.get_json()["accepted"] == 1
    digest_as_token = bearer(sha("tok-c1-xxxx"))  # knowing the file's digest is not knowing the token
    assert client.post("/mettre_a_jour_donnees", json={"gel_used": 1}, headers=digest_as_token).status_code == 401
    entry = client.get("/obtenir_donnees_utilisation").get_json()["dispensers"][0]
    assert (entry["id"], entry["gel_used"]) == ("c1", 1.5)
    app.extensions["usage_store"].engine.dispose()
