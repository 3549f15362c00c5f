import cv2

from agent.cli import main


def test_sim_preview_writes_a_montage_of_every_species(tmp_path, capsys):
    out = tmp_path / "preview.png"
    assert main(["sim-preview", str(out), "--scale", "0.25"]) == 0
    img = cv2.imread(str(out))
    # 8 rows (live + 7 attack species) of 480 px, 3 columns of 640 px, scaled by 0.25.
    assert img.shape[:2] == (8 * 120, 3 * 160)
    assert "print_cutout" in capsys.readouterr().out


def test_sim_preview_rejects_non_png(tmp_path, capsys):
    assert main(["sim-preview", str(tmp_path / "x.jpg")]) == 2
    assert "error[AGT_USAGE]" in capsys.readouterr().err


