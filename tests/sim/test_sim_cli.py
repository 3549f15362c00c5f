import cv2

from agent.cli import main
from agent.commands.sim_preview import VARIANTS
from drivers.sim import ATTACKS


def test_sim_preview_writes_a_montage_of_every_species(tmp_path, capsys):
    out = tmp_path / "preview.png"
    assert main(["sim-preview", str(out), "--scale", "0.25"]) == 0
    img = cv2.imread(str(out))
    # One row per scene (live, every attack species, the identity/camera/scene variants) of 480 px,
    # 3 columns of 640 px, scaled by 0.25.
    rows = 1 + len(ATTACKS) + len(VARIANTS)
    assert rows == 21
    assert img.shape[:2] == (rows * 120, 3 * 160)
    out_text = capsys.readouterr().out
    assert "print_cutout" in out_text and "mask_eyeholes" in out_text and "glasses_print" in out_text


def test_sim_preview_rejects_non_png(tmp_path, capsys):
    assert main(["sim-preview", str(tmp_path / "x.jpg")]) == 2
    assert "error[AGT_USAGE]" in capsys.readouterr().err


