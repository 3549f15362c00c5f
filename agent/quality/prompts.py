"""Prompts for the person at the terminal: stable codes, Chinese and English text, one at a time.

The order of ``PROMPTS`` is the priority: the first failing check in this order is the most useful
thing to say (there is no point asking someone to open their eyes before there is a face).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Prompt:
    code: str
    zh: str
    en: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "zh": self.zh, "en": self.en}


PROMPTS: tuple[Prompt, ...] = (
    Prompt("NO_FACE", "请将面部对准摄像头", "Please face the camera"),
    Prompt("MULTIPLE_FACES", "请确保镜头前只有一人", "Only one person in front of the camera, please"),
    Prompt("TOO_DARK", "光线太暗，请到明亮处", "Too dark: please move to a brighter place"),
    Prompt("TOO_BRIGHT", "光线太强，请避开强光", "Too bright: please move out of the strong light"),
    # The same advice judged from the image on a camera without a lux calibration.
    # Said of the light, never of the person: the same prompt reaches every skin tone (docs/quality.md,
    # *Dark skin and noise*).
    Prompt("FACE_TOO_DARK", "面部光线不足，请到光线更好的地方",
           "Too little light on your face: please move to better light"),
    Prompt("FACE_TOO_BRIGHT", "面部过亮，请避开强光", "Your face is too bright: please move out of the strong light"),
    Prompt("FACE_INCOMPLETE", "请将整个面部置于画面中", "Please keep your whole face in the picture"),
    # Pose before distance: a turned head also looks small, and turning fixes both.
    Prompt("TURN_TO_CAMERA", "请正对摄像头", "Please turn to face the camera directly"),
    Prompt("HEAD_LEVEL", "请平视摄像头，不要抬头或低头", "Please keep your head level"),
    Prompt("HEAD_UPRIGHT", "请不要歪头", "Please keep your head upright"),
    Prompt("MOVE_CLOSER", "请靠近一点", "Please move a little closer"),
    Prompt("MOVE_BACK", "请离远一点", "Please move back a little"),
    Prompt("FACE_OCCLUDED", "请勿遮挡面部", "Please do not cover your face"),
    # Something in front of the eyes and nothing below them: a cap's brim pulled over the eyes (a brim
    # above them is no occluder: ``agent.quality.depth.FaceDepth.brim``).
    Prompt("FACE_HEADWEAR", "请摘下帽子", "Please take off your hat or cap"),
    Prompt("OPEN_EYES", "请睁开眼睛", "Please open your eyes"),
    Prompt("CLOSE_MOUTH", "请闭上嘴巴", "Please close your mouth"),
    Prompt("NEUTRAL_EXPRESSION", "请保持自然表情", "Please keep a neutral expression"),
    Prompt("HOLD_STILL", "请保持不动", "Please hold still"),
    Prompt("POOR_EXPOSURE", "面部曝光不佳，请调整位置或光线", "Your face is poorly lit: please adjust your position"),
    Prompt("LIGHT_COLOR", "光线颜色异常，请调整照明", "Unusual light colour: please adjust the lighting"),
    Prompt("MOVE_TO_CENTRE", "请移到画面中央", "Please move to the centre of the picture"),
    # The face's infrared image stays clipped after the camera's every cure (projector power, IR
    # exposure): the session's own prompt (``projector.ClippedSkin``), not the gate's. Stepping back
    # dims the projector's dots, moving out of direct light the ambient infrared.
    Prompt("IR_TOO_BRIGHT", "面部光线过强，请稍微后退或避开直射光",
           "Too much light on your face for the camera: please step back a little or move out of direct light"),
    # Too little depth on the face: the camera's measurement, not something the person did. Last,
    # so anything the person can change is asked for first.
    Prompt("DEPTH_SPARSE", "正在测量面部，请正对摄像头并保持不动",
           "Measuring your face: please face the camera and hold still"),
)
BY_CODE = {p.code: p for p in PROMPTS}
PRIORITY = {p.code: i for i, p in enumerate(PROMPTS)}


class PromptSelector:
    """One prompt at a time, without flicker.

    A problem must persist for ``on_frames`` framesets before it is announced; a shown prompt
    stays until its problem has been absent for ``off_frames`` framesets, unless a more urgent
    problem has persisted long enough to take over.
    """

    def __init__(self, on_frames: int = 3, off_frames: int = 3):
        self.on_frames = on_frames
        self.off_frames = off_frames
        self.current: Prompt | None = None
        self._streak: dict[str, int] = {}
        self._absent = 0

    def update(self, failing: list[str]) -> Prompt | None:
        failing_set = set(failing)
        self._streak = {c: self._streak.get(c, 0) + 1 for c in failing_set}
        ready = sorted((c for c, n in self._streak.items() if n >= self.on_frames), key=PRIORITY.__getitem__)
        if self.current is not None:
            if self.current.code in failing_set:
                self._absent = 0
                if ready and PRIORITY[ready[0]] < PRIORITY[self.current.code]:
                    self.current = BY_CODE[ready[0]]
                return self.current
            self._absent += 1
            if self._absent < self.off_frames:
                return self.current
        self.current = BY_CODE[ready[0]] if ready else None
        self._absent = 0
        return self.current

    def reset(self) -> None:
        self.current = None
        self._streak.clear()
        self._absent = 0
