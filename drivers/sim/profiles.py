"""Camera profiles: the devices the simulator can pretend to be (``sim://?camera=NAME``).

A profile holds what differs between real RGB-IR-depth cameras and matters to the pipeline: lens
geometry (intrinsics, distortion, the colour module's pose), depth geometry (stereo baseline,
projector offset, matching noise, working range, depth units), the colour auto-exposure, the units in
which the device reports exposure and gain, the projector, and the stream modes it offers.

Intrinsics below are each device's 640x480 ones (every device offers that mode). Other modes derive
from them (``modes.py``: the native calibration's centred crop and scale); the colour mode a camera
streams is chosen for the face as the RealSense driver chooses it (a D455 streams 1280x720 colour).

Sources (figures cited per profile below):
- [DS] Intel RealSense D400 Series Product Family Datasheet, doc. 337029 (rev. 009, June 2020 and
  rev. 017, Sept. 2023): depth FOV, baselines, shutter types, colour sensors, min-Z, projector.
- [LRS-8243] librealsense issue #8243: the D400 colour exposure control has 100 µs granularity,
  range 1..10000; [LRS-6384] #6384: the depth sensor's exposure is in µs, 1..165000, default 8500.
- [LRS-GAIN] librealsense option description "Gain limits ranges from 16 to 248" (depth gain,
  16 = 1x), quoted in UZ-SLAMLab/ORB_SLAM3 issue #944.
- [LRS-8946] librealsense PR #8946: the D405's default depth units are 0.0001 m (others 0.001 m).
- [LRS-1999] librealsense issue #1999: the D435's stereo imagers are "all pass. All visible and IR
  wavelengths"; "the d415 has Bayer pattern filters". [LRS-7260] #7260: "The D455 is actually a color
  sensor" (its stereo imagers). [LRS-12267] #12267: the D415's depth imagers have no IR filter.
  [LRS-13245] #13245: the D430 module (D435/D435i) uses OV9282 stereo imagers. [LRS-6094] #6094: the
  OV9282's spectral sensitivity curve is not public (NDA). Used by ``visible_response`` (leak.py).
- [LRS-10351], [LRS-13036] librealsense issues: the D405 has no projector and an IR-cut filter on
  its imagers, so it cannot see NIR dots (not even another camera's).
- [D405-DK] DigiKey tech forum "The Intel RealSense Depth Camera D405": D401 module, ideal range
  7-50 cm, min-Z 70 mm at 848x480, colour from the left imager (depth and colour coincide).
- [ASTRA] Orbbec Astra / Astra S product pages and datasheets: structured light, 640x480@30 depth,
  60° H x 49.5° V FOV, 0.6-8 m (Astra) / 0.4-2 m (Astra S); 75 mm projector-to-IR-camera baseline
  as given in the brief (not found in a datasheet reachable from here: treat as approximate).
- [G335] Orbbec Gemini 335 product page and datasheet (2024): active stereo with an 850 nm dot
  projector, 50 mm baseline, global-shutter depth imagers 1280x800 with a 90°x65° depth field,
  depth 0.1-10 m (ideal 0.26-3 m), colour with an 86°x55° field. Quoted from the published spec as
  recalled: the datasheet itself is not reachable from here, so treat these as approximate.
  [G336-SEEED] read (session 19): Seeed Studio's "Orbbec Gemini 336" specification table (its wiki,
  Seeed-Studio/wiki-documents, as copied in public repositories): baseline 50 mm, depth 90° x 65°
  up to 1280x800 at 30 fps, global shutter; colour "Field of View (FoV) 86° × 55°", "Up to: 1920 ×
  1080 @ 30fps", YUYV and MJPEG, "Rolling Shutter". The Gemini 336 is the Gemini 335 with an
  IR-pass filter on its stereo imagers (the same table's "Filter Cover: Yes, IR Pass"); that the
  335's colour module is the same is recalled, not read (its own table is not reachable here). A
  public Gemini 335 calibration (an ORB-SLAM3 settings file) gives colour fx 1035.8, cx 965.3,
  cy 540.7: a 1920x1080 calibration, 85.7° across. The 86°x55° field is a 16:9 one (tan 43° /
  tan 27.5° = 1.79), so the sensor is 1920x1080: its 1280x720 is the same field at 2/3 scale.
- [G330-CS] Orbbec documentation "Gemini 330 series coordinate systems" (orbbec.com/docs/
  g330-coordinate-systems): on a Gemini 335 the colour origin is 14.00 mm along +x and 2.02 mm along
  +z from the left IR imager's.
- [UVC] USB Video Class 1.5, CT_EXPOSURE_TIME_ABSOLUTE_CONTROL: exposure in 100 µs units.
- [G2-SEEED] Seeed Studio wiki "Orbbec Gemini2 3D camera" (wiki.seeedstudio.com/cn/orbbec_gemini2),
  its specification table: active stereo IR, depth 0.15-10 m (ideal 0.2-5 m), depth up to 1280x800
  at 30 fps, RGB up to 1920x1080 at 30 fps, 91° horizontal x 66° vertical field of view, UVC, USB 3.0.
  It gives no baseline, colour field, depth noise or colour offset: the Gemini 2's 50 mm baseline and
  86°x55° colour field below are Orbbec's published figures as recalled (the product page is not
  reachable from here; drivers/orbbec.py's COLOR_HFOV uses the same 86°), so treat them as approximate.
- [G336L] Orbbec Gemini 336L: the Gemini 335L's long-baseline active stereo (95 mm) with an IR-pass
  filter on its stereo imagers (it sees the 850 nm dots and ambient NIR, not visible light), an
  850 nm dot projector switched on and off, depth 1280x800 at up to 30 fps (848x480 at 60) with a
  90°x65° depth field, depth 0.17-20 m (ideal 0.25-6 m), colour up to 1280x800 at 60 fps (1280x720
  at 60) through a 94°x68° ±3° lens on a global-shutter sensor. Read (session 17) from
  Orbbec's Gemini 335Lg specification table (the 335L/336L's GMSL2 sibling, same optics) as
  reproduced in public repositories: "RGB Resolution@Frame Rate: Up to 1280 × 800 @ 60 FPS; 1280 ×
  720 @ 60 FPS", "RGB Sensor FOV (H × V): 94° × 68° ± 3°", "RGB Sensor Technology: Global Shutter";
  the same 94° x 68°, 1280x800 @ 60 and 95 mm for the 335L/336L from the Gemini 330 Series Datasheet
  as retailers quote it (OpenELAB, MyBotShop); Orbbec's datasheet itself is not reachable from here.
  The 94°x68° field is a 16:10 one (tan 47° / tan 34° = 1.59), the 1280x800 sensor's, so no colour
  mode larger than 1280x800 exists on this camera. Its colour offset is published: [G330-CS] table 2
  (Gemini 335L/336L) puts the colour origin 23.75 mm along +x of the left IR imager's, 0 along y and
  z. Supported by Orbbec SDK v2 like the Gemini 335 (drivers/orbbec.py, whose ``COLOR_HFOV`` gives
  it the same 94°). By contrast the short-baseline Gemini 335/336 carry an 86°x55° (16:9) rolling-
  shutter colour module up to 1920x1080 at 30 fps ([G336-SEEED]), which the GEMINI335 profile
  offers (session 19; before, it stopped at 1280x800).
- [G335L] Orbbec Gemini 335L: the long-baseline (95 mm) active stereo camera of the 330 series
  without the 336L's IR-pass filter (the 336L is "the Gemini 335L ... with an IR-pass filter", [G336L]),
  the same optics: depth 90°x65° up to 1280x800 at 30 fps, depth 0.17-20 m (ideal 0.25-6 m), colour
  94°x68° ±3° up to 1280x800 on a global-shutter sensor, colour origin 23.75 mm along +x of the left
  imager ([G330-CS] table 2, "Gemini 335L/336L"). Supported by Orbbec SDK v2 (OrbbecSDK_ROS1 release
  v2.7.6 lists "Gemini 330 series ... gemini_330_series.launch"); as for the other 330 series devices
  the SDK runs the IR auto-exposure by default and offers OB_PROP_IR_EXPOSURE_INT (µs) as a manual
  control (recalled from the wrapper's ``enable_ir_auto_exposure``/``ir_exposure`` parameters, not read
  here). Its imagers see visible light as well as 850 nm (no IR-pass filter); the simulator's "nir"
  band models only the 850 nm part, as it does for the D435/D455 and Gemini 335, whose imagers are
  broadband too (a simplification: under sunlight the real imagers also collect visible light).
- [AMS] the Astra series specification table in jsk-ros-pkg's "Install Astra camera" page (Astra,
  Astra Mini, Astra S, Astra Mini S, Astra Pro): the Astra Mini S's optimised range is 0.35-1.0 m,
  its depth VGA (640x480) and QVGA at 30 fps, its colour VGA and QVGA at 30 fps and HD (1280x720) at
  10 fps, where the Astra Pro (the UVC colour camera the "Pro" models carry) gives HD at 30 fps; the
  table leaves the Mini S's field of view blank (60° x 49.5° for the Astra and Astra S).
  [OBSDK2] the Orbbec SDK v2 README: the Astra Mini S Pro is supported by Orbbec SDK v2 once its
  firmware is v2.x (the UVC protocol, October 2025; firmware 1.x speaks OpenNI). Its 60° x 49.5°
  depth field (the series'), its colour field, its baseline and its projector are recalled or typical,
  marked so below: no Astra Mini S datasheet is reachable from here.
- [G2L-KB] a public specification table of the Orbbec Gemini 2 L (team-vinsight/knowledge-base,
  docs/hardware/orbbec-gemini-2l.md, citing Orbbec's product page): active stereo IR, depth up to
  1280x800 at 30 fps, depth 0.2-10 m, depth field H 91° x V 66°, RGB field H 86° x V 55°, RGB up to
  3840x2160 at 30 fps (not modelled: the largest colour mode below is 1920x1080), 6-axis IMU, USB 3.0.
  [G2L-ROS] OrbbecSDK_ROS2's gemini2L.launch.py (Orbbec SDK v2 wrapper): 640x400 colour (MJPG),
  depth (Y14) and IR (Y8) at 15 fps by default, 16:10 depth modes, ``enable_ir_auto_exposure`` true
  and ``enable_color_auto_exposure`` true (the SDK's IR and colour auto-exposure, with its
  OB_PROP_IR_EXPOSURE_INT/IR_GAIN manual controls), depth work modes "Unbinned Dense Default",
  "Unbinned Sparse Default", "Binned Sparse Default". Its 100 mm baseline is Orbbec's figure as
  recalled (neither source gives it); its projector, offsets, noise and AE are typical, marked below.
  [AMS-IR] what the host may set on an Astra Mini S Pro (read, session 18): Orbbec SDK v2's
  src/device/openni/OpenNIDeviceInfo.cpp (PID 0x065e "Astra Mini S Pro" -> AstraMiniDevice) and
  OpenNIDeviceBase.cpp (``initProperties``: OB_PROP_DEPTH_AUTO_EXPOSURE_BOOL, OB_PROP_DEPTH_EXPOSURE_INT,
  OB_PROP_DEPTH_GAIN_INT, OB_PROP_LASER_BOOL read-write on the depth port's vendor accessor;
  OB_PROP_IR_AUTO_EXPOSURE_BOOL / _IR_EXPOSURE_INT / _IR_GAIN_INT aliased to them); on the OpenNI2
  path Orbbec's ros2_astra_camera (astra_camera/src/ros_service.cpp, its later versions: IR exposure ->
  ``setProperty(openni::OBEXTENSION_ID_IR_EXP)``, ``set_ir_gain`` -> OBEXTENSION_ID_IR_GAIN, IR
  auto-exposure -> XN_MODULE_PROPERTY_AE, ``set_laser_enable`` -> OBEXTENSION_ID_LASER_EN and
  XN_MODULE_PROPERTY_EMITTER_STATE); ros_astra_camera issue #53 (Mini S users switching the
  projector and IR flood through the extended API). The laser is switched by a USB property
  write: nothing public says when the write lands (no per-frame trigger is documented), so the
  projector's latency and jitter below stay typical, and the challenge reads the switch off the
  frames themselves.
- [D435F] the Intel RealSense D435f: "all of the features and performance" of its base model "plus the
  addition of an IR Pass Filter over the lenses" (read, session 21: librealsense issue #12033, Intel's
  announcement of the D455f, July 2023; the D435f is the D435 given the same filter, sold alongside it,
  recalled, not read). Without the filter the D435's stereo imagers are "all pass", visible and IR
  (librealsense issue #1999, Intel's answer; realsense-ros #2703: the D435i "is not equipped with an
  infrared-blocking filter"): under a bright window the real D435's IR image carries the window's
  visible light too, the D435f's only its near infrared. The simulator's "nir" band has always modelled
  the 850 nm part alone (a simplification for the broadband D435, exact for the D435f), so the filter
  changes nothing in the rendering against ``D435``: the profile differs by its unit's calibration only.
  It runs on librealsense like every D400 (RS16 gain, IR exposure in µs 1..165000 [LRS-6384], laser
  power 0..360 mW in steps of 30 [DS]); where the filter's passband starts is not published in a
  source reachable here (a long-pass near 800 nm is recalled).
- [D455F] the Intel RealSense D455f: "all of the features and performance of the D455 model plus the
  addition of an IR Pass Filter over the lenses to resolve repetitive pattern and false object
  detection due to light reflections" (read, session 22: librealsense issue #12033, Intel's
  announcement, July 2023). The filter is the one the D435f carries, per librealsense issue #10560
  (read, quoting Intel's datasheet): a 750 nm near-infrared long-pass film (CLAREX NIR-75N), 0.5 mm,
  on the cover glass, with holes over the projector and the RGB sensor; it absorbs the visible. What
  differs from the D435f (the tenth family's): the D455's 95 mm baseline (against 50 mm), its wider
  90°x63° projector, its global-shutter OV9782 colour module (90°x65°, 1280x800) against the D435's
  rolling-shutter OV2740, its min-Z ~0.42-0.52 m and its longer exposure range ([DS]); what differs
  from the D455 (held-out's): the filter (which the simulator's "nir" band renders alike, as for the
  D435f: the 850 nm part alone) and this unit's calibration. It runs on librealsense like every D400:
  RS16 gain, IR exposure in µs (1..200000 on the D455, default 8500: the range is the D455 profile's,
  typical, recalled; [LRS-6384] gives 1..165000 for the D435), laser power 0..360 mW in steps of 30
  [DS].
- [D457] the Intel RealSense D457: "based around the D450 depth module and the new Vision Processor D4
  V5", "our first GMSL/FAKRA high bandwidth stereo camera", "an IP65 grade enclosure", "an on-board
  Maxim serializer chip. A Maxim de-serializer is needed at host side to decode the streams" (read,
  session 23: librealsense issue #10964, Intel's announcement, October 2022). The D450 module is the
  D455's (95 mm baseline, OV9282 global-shutter imagers, 87°x58° depth field, a 90°x63° projector, the
  OV9782 global-shutter colour sensor [DS]); a realsenseai.com product page's excerpt (read the same
  session) carries the D457's GMSL text beside a specification table (whether the table is the D457's
  or the D455f's is not certain from the excerpt) giving "Minimum Depth Distance (Min-Z) at Max
  Resolution: ~52 cm", "Ideal Range: .6 m to 6 m", "Image sensor technology: Global Shutter". What
  differs for the host: it is not a USB device. Its streams arrive over GMSL2 through a deserializer
  into the host's MIPI CSI-2 receiver, and librealsense drives it through the d4xx V4L2 kernel driver
  (realsenseai/realsense_mipi_platform_driver, kernel/realsense/d4xx.c, read: the depth exposure
  control runs 1..MAX_DEPTH_EXP = 200000 µs with DEF_DEPTH_EXP = 33000 µs; the colour's MAX_RGB_EXP
  10000, DEF_RGB_EXP 1660): a D457 starts its IR at 33 ms where a USB D455 starts at 8.5 ms
  ([LRS-6384]'s default; recorded here, while the simulated IR auto-exposure starts settled on the
  scene, so no frame changes: the rendered difference from the D455 is this unit's calibration).
  librealsense issue #12184 (read as a search excerpt) reports a D457 whose manual depth exposure range
  read [0, 0] on a Jetson; how it was resolved was not read, and it is not modelled. The same controls
  otherwise (laser power
  0..360 mW in steps of 30 [DS], RS16 gain). Whether its IP65 window carries an IR-pass filter is not
  in a source reached here: it is rendered in the "nir" band as the D455 (the 850 nm part); the
  window's own reflections are not modelled. Another unit's calibration.
- [D435I] the Intel RealSense D435i: the D435 with an inertial measurement unit (librealsense #6197:
  "2 infrared sensors, 1 RGB (visible light) sensor, 1 infrared projector + an inertial measurement
  unit (IMU)"); realsense-ros #2703 (2023): "The D435i camera model is not equipped with an
  infrared-blocking filter on its sensors. It can see all light frequencies in the visible to
  near-infrared range" (read, session 24). librealsense names it "Intel RealSense D435I", which
  realsense_device reads as a D435 (its table's key). The IMU is not modelled (nothing here reads it).
- [D456] the Intel RealSense D456: "The D456 has the same capabilities as the D455 model, with the
  addition of an IP65-rated casing that protects against dust and water" (read, session 25: librealsense
  issue #12285, Intel's announcement, October 2023); a USB camera on librealsense (realsense_device's
  table already names it with the D455's figures: 90° colour, min-Z 0.42/0.52 m, ideal to 6 m). So the
  D455's optics (95 mm baseline, OV9282 global-shutter imagers, 87°x58° depth field, a 90°x63°
  projector, the OV9782 global-shutter colour sensor [DS]) and a USB D455's controls (IR exposure in µs
  1..200000, 8500 by default; laser power 0..360 mW in steps of 30 [DS]; RS16 gain). Whether its IP65
  window carries an IR-pass filter is not in a source reached here (the announcement names none; the
  D455f's is named in its own): rendered in the "nir" band as the D455, ``ir_leak`` refused as for the
  D457; the window's own reflections are not modelled. Its IR imagers' dark noise, fixed-pattern noise
  and hot pixels: no published figure was reached this session (OV9282 datasheet figures not read), so
  the simulator's noise model is kept. Another unit's calibration.
- [G335LE] the Orbbec Gemini 335Le: the Gemini 335L's long-baseline stereo module (95 mm, 90°x65° depth,
  the global-shutter 94° colour sensor, an 850 nm dot projector switched through the SDK's laser switch, no
  IR-pass filter) in a sealed housing on Gigabit Ethernet with PoE and an M12 connector, on Orbbec SDK v2's
  network transport (recalled, not read this session: Orbbec's 330-series announcements name a 335Le and a
  GMSL2 335Lg beside the USB 335L; whether its window adds an IR-pass filter was not reached: rendered
  without one, as the 335L). Its controls go over the network: the laser switch lands a frame later
  than on USB more often (jitter 0.30, typical, assumed). Another unit's calibration.
- [G330] the Orbbec Gemini 330: the entry model of the Gemini 330 series, the Gemini 335's stereo module
  (50 mm baseline, 90°x65° global-shutter depth imagers without an IR-pass filter, the 86°x55° rolling
  colour module, the 850 nm dot projector on the SDK's laser switch) without the 335's IMU, on USB 3 and
  Orbbec SDK v2 (recalled, not read this session: OrbbecSDK_ROS1's release notes list the "Gemini 330
  series" under one launch file; that the 330 is the 335 less its IMU is recalled from Orbbec's series
  page). Rendered as the 335 with another unit's calibration.
- [D436] the Intel RealSense D436: named beside the D456 among RealSense's later D400 cameras (recalled, not
  read this session; no datasheet reached). Rendered as the D435 (50 mm baseline, OV9282 global-shutter
  imagers, 87°x58° depth, the 850 nm projector with librealsense's laser power 0..360 mW, the rolling
  OV2740 colour module) with another unit's calibration; whether it carries the D435f's IR-pass film was
  not reached: rendered with one (the "nir" band alone, ``ir_leak`` refused). Every figure "recalled".
- [G215] the Orbbec Gemini 215: a short-range stereo camera named beside the Gemini 210 in OrbbecSDK_ROS1's
  release notes (v2.7.6, read: "Gemini 215 | 1.0.9 | gemini210.launch", the two sharing one launch file);
  its datasheet was not reached: that it is an active-stereo camera with an 850 nm dot projector on the SDK's
  laser switch and a working range reaching the 0.35-0.52 m faces is recalled, not read. Rendered as the
  nearest profile, the Gemini 2 (Orbbec's earlier stereo ASIC, 50 mm baseline, 91° depth, 86° colour,
  a projector switched on and off), with another unit's calibration; whether its imagers carry an IR-pass
  filter was not reached: rendered as the Gemini 2 (the "nir" band alone, ``ir_leak`` refused).
- [G210] the Orbbec Gemini 210: named with the Gemini 215 in OrbbecSDK_ROS1's release notes (v2.7.2, read this
  session: "Gemini 210 | 1.0.9 | gemini210.launch", the launch file named after it), so it runs the SDK's laser
  switch as the 215 and the Gemini 2 do. Its datasheet was not reached: that it is a short-range active-stereo
  camera with an 850 nm dot projector and a depth range from about 0.1 m is recalled, not read; its baseline
  (30 mm), depth field (95°) and colour module (the Gemini 2's 86° 1920x1080) are assumptions, and whether its
  imagers carry an IR-pass filter was not reached: rendered as the Gemini 2's (the "nir" band alone,
  ``ir_leak`` refused).
- [D555] the Intel RealSense D555: "New SKUs support: D555 - The first Ethernet based POE camera" (read, session
  33: librealsense v2.56.4's release notes, realsenseai/librealsense, with "D421" beside it). Its datasheet was not
  reached: that it carries the Vision SoC V5, an IMU and the D450 module's optics (the D455's 95 mm baseline,
  87°x58° depth field, OV9282 global-shutter imagers, the OV9782 global-shutter colour sensor at 90°x65°) in an
  IP65 housing on Power over Ethernet is recalled, not read; so are its imagers without an IR-pass filter (Intel
  sells the filtered D455f separately; no "D555f" is recalled). Rendered as the D455 (``visible_response`` the
  D455's colour imagers', ``ir_leak`` on every URI of its family) with another unit's calibration and the
  projector switched by a network property write (assumed: one frame late 3 in 10, as the Gemini 335Le's). The
  D421 (no colour sensor, recalled) could not serve: the pipeline needs a colour stream.
- [D435IF] the Intel RealSense D435if: "a new camera model called D435if that has both the IMU of a D435i and
  the light blocking filters of the D435f" (read, session 34: librealsense issue #11705, Intel's answer, April
  2023, with the store's page named); the filter the D435f's (CLAREX NIR-75N, a 750 nm long-pass on the cover
  glass over the stereo imagers, librealsense #10560, read as in [D435F]). So the D430 module's optics (50 mm
  baseline, OV9282 global-shutter imagers, 87°x58° depth, the 850 nm projector with laser power 0..360 mW,
  the rolling OV2740 colour module [DS]) behind an IR-pass filter: rendered in the "nir" band (``ir_leak``
  refused), the D435f's controls; the IMU is not modelled (nothing here reads it). Another unit's calibration.
- [G335LG] the Orbbec Gemini 335Lg: the Gemini 335L's long-baseline stereo module (95 mm, 90°x65° depth, the
  global-shutter 94° colour sensor, the 850 nm dot projector switched through the SDK's laser switch) on
  GMSL2 with a FAKRA connector for a Jetson's deserialiser (recalled, not read this session: Orbbec's
  330-series announcements name it beside the 335Le, [G335LE]). Whether its window adds an IR-pass filter
  was not reached: rendered without one, as the 335L and the 335Le (``ir_leak`` on every URI of its family).
  Its controls go through the GMSL link's control channel: the laser switch a frame late a little more often
  than on USB (jitter 0.20, typical, assumed). Another unit's calibration. Every figure "recalled".
- [G305-SEEED] Seeed Studio's wiki page "Orbbec Gemini 305 3D Camera" (read this session,
  wiki.seeedstudio.com/orbbec_gemini305): a stereo depth camera for close-range robot vision (wrist
  mounting); operating range 4-100 cm+, recommended 7-50 cm; stereo vision, 18 mm baseline; spatial
  precision <= 1 % (1280x800 at 50 cm); depth 88°x65° ±3° at 1280x800 up to 30 fps (848x480 at 60); colour
  94°x68° ±3° up to 1280x800 at 60 fps; sensors "stereo color, global shutter"; 42x42x23 mm; USB-C.
  [G305-ROS] OrbbecSDK_ROS1's launch/gemini305.launch (read): ``enable_laser``, ``laser_energy_level`` and
  a laser on/off interleave mode (``interleave_ae_mode`` "laser", ``laser_index0/1_laser_control`` 1/0): a
  projector the host switches. Its v2.8.6 release notes (read) name a "Gemini 305 dual color mode": the
  stereo imagers are colour sensors. What is assumed: the projector an 850 nm dot projector on the SDK's
  laser switch as the 335's (its wavelength not read); the stereo imagers' colour filters without an
  IR-pass or IR-cut filter (a dual-colour stereo pair that also sees the projector: RGGB imagers read as Y8,
  ``visible_response`` (0.25, 0.5, 0.25), ``ir_leak`` on every URI of its family); the projector beside the
  imagers in the 42 mm body; the depth ASIC's sub-pixel noise the 335's.
- [D455-CAL] a D455's factory colour calibration published with the ABC-iRobotics/Hand_Tools data
  set (1280x800: fx 629.6, fy 628.9, ppx 629.1, ppy 397.5; Brown-Conrady k1 -0.0557 k2 0.0603
  p1 -0.00098 p2 -0.00085 k3 -0.0161).

Figures that no datasheet publishes (auto-exposure target and speed, projector switching latency,
the exact 640x480 focal length of a given unit, the colour module's exact offset) are typical
values, marked "typical" where they appear; every unit differs by its factory calibration anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..base import ProjectorPowerRange
from ..errors import InvalidUri
from ..frame import DistortionModel, Extrinsics, Intrinsics, StreamKind

GAIN_MULTIPLIER = "multiplier"   # gain reported as a plain factor, 1.0 = unity
GAIN_RS16 = "rs16"               # RealSense depth/IR: 16..248, 16 = 1x (value / 16 = factor)
GAIN_NONE = "none"               # the device puts no gain in its frame metadata


def rotation(rx: float, ry: float, rz: float) -> np.ndarray:
    """R = Rz @ Ry @ Rx for angles in radians (x right, y down, z forward)."""
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    rot_x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    rot_y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rot_z = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rot_z @ rot_y @ rot_x


@dataclass(frozen=True)
class AutoExposureSpec:
    """How a colour sensor's auto-exposure behaves.

    ``target``: linear mean of the metered (centre-weighted) region it steers to; ``speed``: share of
    the log-exposure error corrected per frame (1 = in one frame); exposure limits in seconds (the
    upper one is the frame time at 30 fps unless the device lowers the frame rate); gain limits as
    factors (1 = unity) over which the sensor raises gain once exposure is at its limit.
    """

    target: float
    speed: float
    exposure_range_s: tuple[float, float]
    gain_range: tuple[float, float]


@dataclass(frozen=True)
class MetadataUnits:
    """How one stream reports exposure and gain in its frame metadata."""

    gain: str                        # GAIN_MULTIPLIER, GAIN_RS16 or GAIN_NONE
    exposure_us: float | None        # µs per reported unit (1: µs; 100: 100 µs); None: not reported

    def report_gain(self, factor: float) -> float | None:
        if self.gain == GAIN_NONE:
            return None
        return float(factor) * 16.0 if self.gain == GAIN_RS16 else float(factor)

    def report_exposure(self, seconds: float) -> float | None:
        if self.exposure_us is None:
            return None
        return round(seconds * 1e6 / self.exposure_us) if self.exposure_us > 1 else seconds * 1e6


@dataclass(frozen=True)
class CameraProfile:
    """One device model as the simulator renders it. Lengths in metres, angles in degrees."""

    name: str                                    # URI value: camera=NAME
    model: str                                   # human name
    depth_intrinsics: Intrinsics                 # depth and IR (left imager), 640x480
    color_intrinsics: Intrinsics                 # colour stream, 640x480, with distortion
    depth_to_color: Extrinsics
    stereo_baseline_m: float                     # imager to imager (structured light: projector to imager)
    projector_offset_m: float                    # left imager to projector, along +x
    sigma_disparity_px: float                    # sub-pixel matching noise, sets sigma_z = z^2 s / (f B)
    depth_range_m: tuple[float, float]
    depth_scale: float                           # metres per Z16 unit
    color_ae: AutoExposureSpec
    color_units: MetadataUnits
    ir_units: MetadataUnits
    ir_exposure_default_s: float
    ir_exposure_range_s: tuple[float, float]
    ir_gain_default: float                       # factor
    projector: str | None                        # description, or None for a camera without one
    projector_power: ProjectorPowerRange | None  # None: on/off only (or no projector)
    projector_nominal_mw: float                  # optical power the dots' brightness is scaled to
    projector_latency_frames: int                # typical frames from command to effect
    projector_jitter: float                      # typical probability the effect lands one frame later
    structured_light: bool                       # depth from projector-camera triangulation only
    ir_band: str                                 # "nir" (850 nm) or "visible" (IR-cut imagers, D405)
    depth_shutter: str                           # "global" or "rolling"
    color_shutter: str
    color_from_depth_imager: bool                # colour comes from the left imager (no separate module)
    stream_modes: tuple[tuple[str, int, int, int], ...]   # (kind, width, height, fps)
    # The range ``ir_exposure_range_s`` is what the host may set (a lock). The device's own IR
    # auto-exposure, when it runs one, moves within it; False: it holds ``ir_exposure_default_s``
    # until the host sets another (a structured-light engine's fixed exposure, the Astra Mini S's).
    ir_auto_exposure: bool = True
    # The stereo imagers' response to visible light relative to a monochrome sensor's, per band (B, G,
    # R), when no IR-pass filter covers them (``leak.py``, ``ir_leak=1``): (1, 1, 1) a monochrome imager,
    # (0.25, 0.5, 0.25) a colour (RGGB) imager read as Y8. None: an IR-pass, band-pass or IR-cut filter
    # (or a visible-band profile), or not known here: ``ir_leak=1`` is refused.
    visible_response: tuple[float, float, float] | None = None

    @property
    def ir_auto_exposure_range_s(self) -> tuple[float, float]:
        """Where the device's own IR auto-exposure may go: the settable range, or the default
        exposure alone for a device that runs none."""
        if self.ir_auto_exposure:
            return self.ir_exposure_range_s
        return (self.ir_exposure_default_s, self.ir_exposure_default_s)

    @property
    def hfov_deg(self) -> float:
        i = self.depth_intrinsics
        return float(np.degrees(2 * np.arctan(i.width / 2 / i.fx)))

    @property
    def color_hfov_deg(self) -> float:
        i = self.color_intrinsics
        return float(np.degrees(2 * np.arctan(i.width / 2 / i.fx)))

    @property
    def has_projector(self) -> bool:
        return self.projector is not None

    def units(self, stream: StreamKind) -> MetadataUnits:
        return self.color_units if stream is StreamKind.COLOR else self.ir_units

    def offers(self, kind: str, width: int, height: int, fps: int) -> bool:
        return (kind, width, height, fps) in self.stream_modes


def _modes(spec: dict[str, list[tuple[int, int, tuple[int, ...]]]]) -> tuple[tuple[str, int, int, int], ...]:
    return tuple((kind, w, h, fps) for kind, sizes in spec.items() for w, h, rates in sizes for fps in rates)


_RS_COLOR_UNITS = MetadataUnits(GAIN_MULTIPLIER, 100.0)   # [LRS-8243]: colour exposure in 100 µs units
_RS_IR_UNITS = MetadataUnits(GAIN_RS16, 1.0)              # [LRS-6384], [LRS-GAIN]
_RS_POWER = ProjectorPowerRange(0.0, 360.0, 30.0, 150.0)  # laser_power option 0..360 mW, step 30, default 150
_D4_FAST = (6, 15, 30, 60, 90)

D435 = CameraProfile(
    name="d435", model="Intel RealSense D435",
    # [DS]: depth FOV 87°x58° (1280x720), OV9282 global-shutter imagers; the 640x480 mode is the
    # 1280x800 sensor scaled by 0.6 and cropped, fx ~ 383 (80° horizontally). Values of one unit.
    depth_intrinsics=Intrinsics(640, 480, 382.6, 382.6, 319.8, 238.4, DistortionModel.INVERSE_BROWN_CONRADY),
    # [DS]: colour OV2740 rolling shutter, 69°x42° at 1920x1080; fx ~ 615 at 640x480.
    color_intrinsics=Intrinsics(640, 480, 615.3, 615.7, 322.4, 241.1, DistortionModel.BROWN_CONRADY,
                                (0.071, -0.138, 0.0006, -0.0004, 0.052)),
    depth_to_color=Extrinsics.from_arrays(rotation(np.deg2rad(0.12), np.deg2rad(-0.21), np.deg2rad(0.05)),
                                          np.array([0.0148, 0.0001, 0.0003])),
    stereo_baseline_m=0.050,                     # [DS]: 50 mm
    projector_offset_m=0.025,                    # between the imagers
    sigma_disparity_px=0.08,                     # [DS] depth RMS error <2 % at 2 m; 0.08 px sub-pixel
    depth_range_m=(0.20, 3.0),                   # [DS] min-Z 195 mm at 848x480; 3 m kept for a kiosk
    depth_scale=0.001,
    color_ae=AutoExposureSpec(0.18, 0.25, (50e-6, 1 / 30), (1.0, 16.0)),   # typical
    color_units=_RS_COLOR_UNITS, ir_units=_RS_IR_UNITS,
    ir_exposure_default_s=0.0085, ir_exposure_range_s=(1e-6, 0.165), ir_gain_default=1.0,   # [LRS-6384]
    projector="850 nm VCSEL dot projector, 86°x57° field of projection", projector_power=_RS_POWER,
    projector_nominal_mw=150.0,
    projector_latency_frames=1, projector_jitter=0.05,    # typical: the next frame, rarely one later
    structured_light=False, ir_band="nir", depth_shutter="global", color_shutter="rolling",
    color_from_depth_imager=False,
    # [LRS-1999]: the stereo imagers are "all pass", visible and IR (no IR-pass filter; the D435f adds one):
    # monochrome OV9282s ([LRS-13245]); their QE curve is not public ([LRS-6094]: leak.py's is recalled).
    visible_response=(1.0, 1.0, 1.0),
    stream_modes=_modes({
        "depth": [(1280, 720, (6, 15, 30)), (848, 480, _D4_FAST), (640, 480, _D4_FAST), (640, 360, _D4_FAST)],
        "ir": [(1280, 720, (6, 15, 30)), (848, 480, _D4_FAST), (640, 480, _D4_FAST)],
        "color": [(1920, 1080, (6, 15, 30)), (1280, 720, (6, 15, 30)), (848, 480, (6, 15, 30, 60)),
                  (640, 480, (6, 15, 30, 60))],
    }),
)

D455 = CameraProfile(
    name="d455", model="Intel RealSense D455",
    # [DS]: depth FOV 87°x58° like the D435 (same imagers), global-shutter colour OV9782 at 90°x65°:
    # the wider field is the colour one. Depth 640x480 fx ~ 390 (typical unit).
    depth_intrinsics=Intrinsics(640, 480, 390.6, 390.6, 321.4, 237.9, DistortionModel.INVERSE_BROWN_CONRADY),
    # [D455-CAL] 1280x800 colour calibration scaled by 0.6 and cropped to 640x480 (fx 629.6*0.6).
    color_intrinsics=Intrinsics(640, 480, 377.7, 377.4, 313.5, 238.5, DistortionModel.BROWN_CONRADY,
                                (-0.0557, 0.0603, -0.00098, -0.00085, -0.0161)),
    # The colour module sits ~59 mm from the left imager, toward the right imager (typical calibration).
    depth_to_color=Extrinsics.from_arrays(rotation(np.deg2rad(-0.08), np.deg2rad(0.15), np.deg2rad(-0.04)),
                                          np.array([-0.0591, 0.0002, 0.0004])),
    stereo_baseline_m=0.095,                     # [DS]: 95 mm
    projector_offset_m=0.045,                    # between the imagers
    sigma_disparity_px=0.08,
    depth_range_m=(0.40, 6.0),                   # [DS]: min-Z ~420 mm at 848x480 (52 cm at 1280x720), ideal 0.6-6 m
    depth_scale=0.001,
    color_ae=AutoExposureSpec(0.17, 0.30, (20e-6, 1 / 30), (1.0, 8.0)),   # typical; global-shutter sensor
    color_units=_RS_COLOR_UNITS, ir_units=_RS_IR_UNITS,
    ir_exposure_default_s=0.0085, ir_exposure_range_s=(1e-6, 0.2), ir_gain_default=1.0,
    projector="850 nm VCSEL dot projector, 90°x63° field of projection", projector_power=_RS_POWER,
    projector_nominal_mw=150.0,
    projector_latency_frames=1, projector_jitter=0.05,
    structured_light=False, ir_band="nir", depth_shutter="global", color_shutter="global",
    color_from_depth_imager=False,
    # [LRS-7260]: the stereo imagers are colour sensors ("the D455 is actually a color sensor"), with no
    # IR-pass filter (the D455f adds one, [D455F]): visible light through each dye's pixels (leak.BAYER).
    visible_response=(0.25, 0.5, 0.25),
    stream_modes=_modes({
        "depth": [(1280, 720, (5, 15, 30)), (848, 480, (5, 15, 30, 60, 90)), (640, 480, (5, 15, 30, 60, 90))],
        "ir": [(1280, 800, (5, 15, 30)), (848, 480, (5, 15, 30, 60, 90)), (640, 480, (5, 15, 30, 60, 90))],
        "color": [(1280, 800, (5, 15, 30)), (1280, 720, (5, 15, 30)), (848, 480, (5, 15, 30, 60)),
                  (640, 480, (5, 15, 30, 60))],
    }),
)

D415 = CameraProfile(
    name="d415", model="Intel RealSense D415",
    # [DS]: depth FOV 65°x40° (1280x720), OV2740 rolling-shutter imagers: the narrow camera.
    # 640x480 fx ~ 593 (56° horizontally; typical unit).
    depth_intrinsics=Intrinsics(640, 480, 593.0, 593.0, 318.6, 241.2, DistortionModel.INVERSE_BROWN_CONRADY),
    color_intrinsics=Intrinsics(640, 480, 612.8, 613.1, 318.9, 243.0, DistortionModel.BROWN_CONRADY,
                                (0.064, -0.121, 0.0004, -0.0002, 0.041)),     # same OV2740 colour as D435
    depth_to_color=Extrinsics.from_arrays(rotation(np.deg2rad(0.05), np.deg2rad(0.18), np.deg2rad(-0.03)),
                                          np.array([0.0150, -0.0001, 0.0002])),
    stereo_baseline_m=0.055,                     # [DS]: 55 mm
    projector_offset_m=0.028,
    # The D415 matches at 1920x1080-class resolution: its 640x480 output has finer sub-pixel noise.
    sigma_disparity_px=0.06,
    depth_range_m=(0.30, 3.0),                   # [DS]: min-Z ~310 mm at 848x480 (45 cm at 1280x720)
    depth_scale=0.001,
    color_ae=AutoExposureSpec(0.18, 0.25, (50e-6, 1 / 30), (1.0, 16.0)),   # typical
    color_units=_RS_COLOR_UNITS, ir_units=_RS_IR_UNITS,
    # Rolling-shutter imagers integrate longer by default (33 ms at 30 fps; typical).
    ir_exposure_default_s=0.033, ir_exposure_range_s=(1e-6, 0.165), ir_gain_default=1.0,
    projector="850 nm VCSEL dot projector, 67°x41° field of projection", projector_power=_RS_POWER,
    projector_nominal_mw=150.0,
    projector_latency_frames=1, projector_jitter=0.10,   # typical; rolling readout straddles frames more often
    structured_light=False, ir_band="nir", depth_shutter="rolling", color_shutter="rolling",
    color_from_depth_imager=False,
    # [LRS-1999]: "the d415 has Bayer pattern filters" on its stereo imagers, no IR-pass filter
    # ([LRS-12267]): visible light through each dye's pixels (leak.BAYER).
    visible_response=(0.25, 0.5, 0.25),
    stream_modes=_modes({
        "depth": [(1280, 720, (6, 15, 30)), (848, 480, _D4_FAST), (640, 480, _D4_FAST)],
        "ir": [(1280, 720, (6, 15, 30)), (848, 480, _D4_FAST), (640, 480, _D4_FAST)],
        "color": [(1920, 1080, (6, 15, 30)), (1280, 720, (6, 15, 30)), (848, 480, (6, 15, 30, 60)),
                  (640, 480, (6, 15, 30, 60))],
    }),
)

D405 = CameraProfile(
    name="d405", model="Intel RealSense D405",
    # [D405-DK], [DS]: D401 module, 87°x58°, 18 mm baseline, no projector, no separate colour module:
    # colour is the left imager's RGB image through the ISP, so depth and colour share one geometry.
    depth_intrinsics=Intrinsics(640, 480, 386.9, 386.9, 320.6, 239.4, DistortionModel.INVERSE_BROWN_CONRADY),
    color_intrinsics=Intrinsics(640, 480, 386.9, 386.9, 320.6, 239.4, DistortionModel.BROWN_CONRADY),
    depth_to_color=Extrinsics.identity(),
    stereo_baseline_m=0.018,
    projector_offset_m=0.009,                    # unused (no projector); kept so geometry stays defined
    sigma_disparity_px=0.08,
    depth_range_m=(0.07, 1.5),                   # [D405-DK] ideal 7-50 cm; it still measures, noisily, further
    depth_scale=0.0001,                          # [LRS-8946]
    color_ae=AutoExposureSpec(0.18, 0.30, (20e-6, 1 / 30), (1.0, 8.0)),   # typical
    color_units=_RS_COLOR_UNITS, ir_units=_RS_IR_UNITS,
    ir_exposure_default_s=0.033, ir_exposure_range_s=(1e-6, 0.2), ir_gain_default=1.0,
    projector=None, projector_power=None, projector_nominal_mw=0.0,
    projector_latency_frames=0, projector_jitter=0.0,
    structured_light=False,
    ir_band="visible",                            # [LRS-10351], [LRS-13036]: IR-cut filter on the imagers
    depth_shutter="global", color_shutter="global", color_from_depth_imager=True,
    stream_modes=_modes({
        "depth": [(1280, 720, (5, 15, 30)), (848, 480, (5, 15, 30, 60, 90)), (640, 480, (5, 15, 30, 60, 90))],
        "ir": [(1280, 720, (5, 15, 30)), (848, 480, (5, 15, 30, 60, 90)), (640, 480, (5, 15, 30, 60, 90))],
        "color": [(1280, 720, (5, 15, 30)), (848, 480, (5, 15, 30, 60, 90)), (640, 480, (5, 15, 30, 60, 90))],
    }),
)

ASTRA = CameraProfile(
    name="astra", model="Orbbec Astra S (structured light)",
    # [ASTRA]: 60° H x 49.5° V at 640x480 -> fx = 320 / tan(30°) = 554 (square pixels; the quoted V
    # field implies slightly non-square ones, a rounding we do not copy).
    depth_intrinsics=Intrinsics(640, 480, 554.3, 554.3, 319.5, 239.5, DistortionModel.NONE),
    color_intrinsics=Intrinsics(640, 480, 538.0, 538.0, 316.2, 243.9, DistortionModel.BROWN_CONRADY,
                                (0.021, -0.062, 0.0010, 0.0006, 0.0)),
    # The colour camera sits between projector and IR camera, ~25 mm from the IR camera (typical).
    depth_to_color=Extrinsics.from_arrays(rotation(np.deg2rad(0.2), np.deg2rad(0.1), np.deg2rad(0.0)),
                                          np.array([0.0250, 0.0003, 0.0010])),
    # Triangulation between the projector and the single IR camera: the baseline IS the projector offset.
    stereo_baseline_m=0.075, projector_offset_m=0.075,
    # [ASTRA]: accuracy ±1-3 mm at 1 m -> sigma_d = 0.003 * 554 * 0.075 / 1^2 ~ 0.12 px.
    sigma_disparity_px=0.12,
    # [ASTRA] Astra S; the plain Astra starts at 0.6 m, too far for a kiosk.
    depth_range_m=(0.40, 2.0),
    depth_scale=0.001,                           # OpenNI PIXEL_FORMAT_DEPTH_1_MM
    color_ae=AutoExposureSpec(0.16, 0.12, (100e-6, 1 / 30), (1.0, 8.0)),   # typical UVC webcam AE: slower
    # OpenNI2 frames carry no exposure or gain metadata (VideoFrameRef has none).
    color_units=MetadataUnits(GAIN_NONE, None), ir_units=MetadataUnits(GAIN_NONE, None),
    ir_exposure_default_s=0.0085, ir_exposure_range_s=(0.0085, 0.0085), ir_gain_default=1.0,
    projector="830 nm laser with diffractive speckle pattern (on/off only)", projector_power=None,
    projector_nominal_mw=150.0,
    projector_latency_frames=2, projector_jitter=0.30,   # typical: a USB property write, not a per-frame GPIO
    structured_light=True, ir_band="nir", depth_shutter="global", color_shutter="rolling",
    color_from_depth_imager=False,
    stream_modes=_modes({
        "depth": [(640, 480, (30,)), (320, 240, (30, 60))],
        "ir": [(640, 480, (30,)), (320, 240, (30,))],
        "color": [(640, 480, (30,)), (1280, 720, (10,))],
    }),
)

# The Gemini 330 series' stream modes (the Gemini 335 and 336L profiles): the SDK's lists for the series.
G330_STREAM_MODES = _modes({
    "depth": [(1280, 800, (5, 10, 15, 30)), (848, 480, (5, 10, 15, 30, 60, 90)),
              (640, 480, (5, 10, 15, 30, 60, 90)), (640, 400, (5, 10, 15, 30, 60, 90))],
    "ir": [(1280, 800, (5, 10, 15, 30)), (848, 480, (5, 10, 15, 30, 60, 90)),
           (640, 480, (5, 10, 15, 30, 60, 90)), (640, 400, (5, 10, 15, 30, 60, 90))],
    "color": [(1280, 800, (5, 10, 15, 30, 60)), (1280, 720, (5, 10, 15, 30, 60)),
              (848, 480, (5, 10, 15, 30, 60)), (640, 480, (5, 10, 15, 30, 60)), (640, 400, (5, 10, 15, 30, 60))],
})
# The Gemini 335's: the series' and its 16:9 colour sensor's full 1920x1080, at up to 30 fps
# ([G336-SEEED]; the lower rates typical, as the other modes'). Larger than the 1280x720 the driver's
# rule chooses (72 px between the eyes at 0.6 m), so no session that does not force it streams it.
G335_STREAM_MODES = G330_STREAM_MODES + _modes({"color": [(1920, 1080, (5, 10, 15, 30))]})

GEMINI335 = CameraProfile(
    name="gemini335", model="Orbbec Gemini 335 (active stereo)",
    # [G335]: depth 90°x65° at 1280x800 -> fx = 640 / tan(45°) = 640; the 640x480 mode is the
    # 1280x800 image scaled by 0.6 and cropped (modes.py), fx = 384. Principal point of a typical unit.
    depth_intrinsics=Intrinsics(640, 480, 384.0, 384.0, 320.9, 238.7, DistortionModel.INVERSE_BROWN_CONRADY),
    # [G335]: colour 86° horizontally at 1280x800 -> fx = 640 / tan(43°) = 686.3, x0.6 = 411.8 at
    # 640x480. The distortion is a typical wide-angle module's (barrel, k1 < 0), not a unit's.
    color_intrinsics=Intrinsics(640, 480, 411.8, 411.6, 318.2, 241.6, DistortionModel.BROWN_CONRADY,
                                (-0.048, 0.041, 0.0004, -0.0007, -0.009)),
    # [G330-CS]: colour 14.00 mm along +x and 2.02 mm along +z from the left imager; rotation typical.
    depth_to_color=Extrinsics.from_arrays(rotation(np.deg2rad(0.10), np.deg2rad(-0.12), np.deg2rad(0.06)),
                                          np.array([0.0140, 0.0000, 0.00202])),
    stereo_baseline_m=0.050,                     # [G335]: 50 mm
    projector_offset_m=0.032,                    # typical: the projector sits right of the colour module
    # [G335] depth RMS in the D435's class (<= 2 % at 2 m) through a shorter-focus lens: a little
    # more sub-pixel noise than the D435's 0.08 px (typical).
    sigma_disparity_px=0.10,
    depth_range_m=(0.26, 3.0),                   # [G335]: ideal 0.26-3 m (it reports 0.1-10 m, noisily)
    depth_scale=0.001,
    # Typical UVC colour auto-exposure (the depth engine's AE is separate): steers a little slower
    # and to a darker target than the RealSense colour module.
    color_ae=AutoExposureSpec(0.16, 0.20, (100e-6, 1 / 30), (1.0, 16.0)),
    # [UVC]: colour exposure in 100 µs units, gain as a plain factor; IR exposure in µs (typical of
    # the SDK's frame metadata), gain as a factor.
    color_units=MetadataUnits(GAIN_MULTIPLIER, 100.0), ir_units=MetadataUnits(GAIN_MULTIPLIER, 1.0),
    ir_exposure_default_s=0.005, ir_exposure_range_s=(20e-6, 0.1), ir_gain_default=1.0,   # typical
    # [G335]: 850 nm dot projector; driven on/off through the SDK's laser switch (no mW setting).
    projector="850 nm VCSEL dot projector (on/off only)", projector_power=None,
    projector_nominal_mw=150.0,
    projector_latency_frames=1, projector_jitter=0.15,   # typical: a USB property write, usually the next frame
    structured_light=False, ir_band="nir", depth_shutter="global",
    color_shutter="rolling",                     # typical of a 1 MP UVC colour module; not checked in a datasheet
    color_from_depth_imager=False,
    # No IR-pass filter (the Gemini 336 is the 335 with one, [G336-SEEED]); monochrome imagers assumed
    # (recalled, not read): leak.py's recalled curve.
    visible_response=(1.0, 1.0, 1.0),
    stream_modes=G335_STREAM_MODES,
)

GEMINI2 = CameraProfile(
    name="gemini2", model="Orbbec Gemini 2 (active stereo)",
    # [G2-SEEED]: 91° horizontally at 1280x800 -> fx = 640 / tan(45.5°) = 628.9; the 640x480 mode is
    # the 1280x800 image scaled by 0.6 and cropped (modes.py), fx = 377.4 (the quoted 66° vertical
    # field implies slightly non-square pixels, a rounding we do not copy). Principal point typical.
    depth_intrinsics=Intrinsics(640, 480, 377.4, 377.4, 319.2, 240.6, DistortionModel.INVERSE_BROWN_CONRADY),
    # [G2-SEEED] colour up to 1920x1080; 86° horizontally (recalled) -> fx = 960 / tan(43°) = 1029.5 at
    # 1920x1080, and 640x480 is a 1440x1080 crop scaled by 4/9: fx = 457.6 (55° vertically gives
    # fy = 540 / tan(27.5°) x 4/9 = 461: square within the rounding). Distortion typical (barrel).
    color_intrinsics=Intrinsics(640, 480, 457.6, 457.4, 321.7, 238.9, DistortionModel.BROWN_CONRADY,
                                (0.038, -0.052, 0.0005, 0.0003, 0.011)),
    # Typical: the colour module beside the left imager, ~13 mm along +x; no published figure.
    depth_to_color=Extrinsics.from_arrays(rotation(np.deg2rad(-0.07), np.deg2rad(0.09), np.deg2rad(0.11)),
                                          np.array([0.0130, 0.0001, 0.0010])),
    stereo_baseline_m=0.050,                     # [G2-SEEED] note: 50 mm as recalled
    projector_offset_m=0.036,                    # typical: right of the colour module
    # Typical: an earlier depth ASIC than the Gemini 335's, matching at up to 1280x800 like it; a little
    # more sub-pixel noise: 0.11 px at 640x480 gives sigma_z = z^2 s / (f B) = 1.5 mm at 0.5 m and
    # 23 mm (1.2 %) at 2 m, inside the <= 2 % at 2 m the maker quotes for its stereo cameras.
    sigma_disparity_px=0.11,
    depth_range_m=(0.20, 5.0),                   # [G2-SEEED]: ideal 0.2-5 m (it reports 0.15-10 m)
    depth_scale=0.001,                           # typical: the SDK's default depth unit, 1 mm
    # Typical UVC colour auto-exposure: between the Gemini 335's and the D435's speed, gain to 16x.
    color_ae=AutoExposureSpec(0.17, 0.22, (100e-6, 1 / 30), (1.0, 16.0)),
    # [UVC]: colour exposure in 100 µs units, gain as a factor; IR exposure in µs and gain as a
    # factor (typical of the SDK's frame metadata).
    color_units=MetadataUnits(GAIN_MULTIPLIER, 100.0), ir_units=MetadataUnits(GAIN_MULTIPLIER, 1.0),
    ir_exposure_default_s=0.004, ir_exposure_range_s=(20e-6, 0.1), ir_gain_default=1.0,   # typical
    # [G2-SEEED] active stereo IR: an 850 nm dot projector (typical wavelength), switched on and off by
    # the SDK's laser property; its power levels are not in mW, so no power setting is exposed.
    projector="850 nm VCSEL dot projector (on/off only)", projector_power=None,
    projector_nominal_mw=150.0,
    projector_latency_frames=1, projector_jitter=0.20,   # typical: a USB property write, one frame late 1 in 5
    structured_light=False, ir_band="nir", depth_shutter="global",
    color_shutter="rolling",                     # typical of a 2 MP UVC colour module; not in [G2-SEEED]
    color_from_depth_imager=False,
    # [G2-SEEED] gives the largest modes (depth 1280x800@30, colour 1920x1080@30); the smaller ones
    # and their rates are typical of the SDK's lists (4:3 depth modes exist for registration to 4:3 colour).
    stream_modes=_modes({
        "depth": [(1280, 800, (5, 10, 15, 30)), (640, 480, (5, 10, 15, 30, 60)), (640, 400, (5, 10, 15, 30, 60))],
        "ir": [(1280, 800, (5, 10, 15, 30)), (640, 480, (5, 10, 15, 30, 60)), (640, 400, (5, 10, 15, 30, 60))],
        "color": [(1920, 1080, (5, 10, 15, 30)), (1280, 720, (5, 10, 15, 30)), (640, 480, (5, 10, 15, 30)),
                  (640, 360, (5, 10, 15, 30))],
    }),
)

GEMINI336L = CameraProfile(
    name="gemini336l", model="Orbbec Gemini 336L (long-baseline active stereo, IR-pass)",
    # [G336L]: depth 90°x65° at 1280x800 -> fx = 640 / tan(45°) = 640; 640x480 is the 1280x800 image
    # scaled by 0.6 and cropped (modes.py), fx = 384 (the 330 series' depth lens; principal point of a
    # typical unit, not the Gemini 335 profile's).
    depth_intrinsics=Intrinsics(640, 480, 384.0, 384.0, 318.6, 241.9, DistortionModel.INVERSE_BROWN_CONRADY),
    # [G336L]: colour 94° horizontally at 1280x800 (read, ±3°) -> fx = 640 / tan(47°) = 596.8, x0.6 =
    # 358.1 at 640x480 (68° vertically: fy = 400 / tan(34°) x 0.6 = 355.8, square within the ±3°).
    # Distortion typical of a 94° module (stronger barrel than the 86° ones).
    color_intrinsics=Intrinsics(640, 480, 358.1, 358.0, 322.4, 239.3, DistortionModel.BROWN_CONRADY,
                                (-0.061, 0.052, -0.0003, 0.0006, -0.014)),
    # [G330-CS] table 2: colour 23.75 mm along +x, 0 along y and z, from the left imager; rotation typical.
    depth_to_color=Extrinsics.from_arrays(rotation(np.deg2rad(0.05), np.deg2rad(0.14), np.deg2rad(-0.08)),
                                          np.array([0.02375, 0.0, 0.0])),
    stereo_baseline_m=0.095,                     # [G336L]: 95 mm (the retailers' datasheet quotes)
    projector_offset_m=0.055,                    # typical: between the colour module and the right imager
    # Typical: the Gemini 335's matching (0.10 px at 640x480) through the same lens; the 95 mm baseline
    # gives sigma_z = z^2 s / (f B) = 0.7 mm at 0.5 m and 11 mm (0.55 %) at 2 m.
    sigma_disparity_px=0.10,
    depth_range_m=(0.25, 6.0),                   # [G336L]: ideal 0.25-6 m (it reports 0.17-20 m)
    depth_scale=0.001,                           # typical: the SDK's default depth unit, 1 mm
    # Typical UVC colour auto-exposure, a little quicker than the Gemini 335's, gain to 16x.
    color_ae=AutoExposureSpec(0.16, 0.24, (100e-6, 1 / 30), (1.0, 16.0)),
    # [UVC]: colour exposure in 100 µs units, gain as a factor; IR exposure in µs and gain as a factor
    # (typical of the SDK's frame metadata, as for the Gemini 335).
    color_units=MetadataUnits(GAIN_MULTIPLIER, 100.0), ir_units=MetadataUnits(GAIN_MULTIPLIER, 1.0),
    ir_exposure_default_s=0.005, ir_exposure_range_s=(20e-6, 0.1), ir_gain_default=1.0,   # typical
    # [G336L]: 850 nm dot projector driven on/off through the SDK's laser switch (no mW setting).
    projector="850 nm VCSEL dot projector (on/off only)", projector_power=None,
    projector_nominal_mw=150.0,
    projector_latency_frames=1, projector_jitter=0.12,   # typical: a USB property write, usually the next frame
    structured_light=False,
    ir_band="nir",                               # [G336L]: IR-pass filter on the stereo imagers
    depth_shutter="global",
    color_shutter="global",                      # [G336L]: "RGB Sensor Technology: Global Shutter"
    color_from_depth_imager=False,
    # [G336L] gives the largest modes (depth 1280x800@30, colour 1280x800@60 and 1280x720@60); the
    # smaller ones and their rates are typical of the 330 series' SDK lists (as the Gemini 335 profile's).
    stream_modes=G330_STREAM_MODES,
)

ASTRA_MINI_S = CameraProfile(
    name="astra_mini_s", model="Orbbec Astra Mini S Pro (short-range structured light, face-payment class)",
    # [AMS]/[OBSDK2]: 60° x 49.5° at 640x480 as the series (recalled for the Mini S) -> fx = 320 / tan(30°)
    # = 554.3; the principal point of a typical unit, the depth image rectified (zero coefficients in
    # the SDK v2's model, where OpenNI named none).
    depth_intrinsics=Intrinsics(640, 480, 554.3, 554.3, 316.8, 243.1, DistortionModel.INVERSE_BROWN_CONRADY),
    # Typical: a face-payment module's colour lens, 63° x 49° at 640x480 (fx = 320 / tan(31.5°) = 522.3;
    # recalled, not read in a datasheet): 55 px between the eyes at 0.6 m at VGA, so it streams HD for
    # the face (1280x720, a crop of the 1280x960 sensor: fx 1044.6, 110 px at 0.6 m).
    color_intrinsics=Intrinsics(640, 480, 522.3, 522.1, 323.6, 236.4, DistortionModel.BROWN_CONRADY,
                                (0.034, -0.071, 0.0007, -0.0004, 0.018)),
    # Typical: the colour module midway between the IR camera and the projector, ~20 mm along +x
    # (the Mini's 80 mm body holds all three in a row); rotation typical.
    depth_to_color=Extrinsics.from_arrays(rotation(np.deg2rad(-0.15), np.deg2rad(0.22), np.deg2rad(0.09)),
                                          np.array([0.0195, 0.0002, 0.0006])),
    # Typical: triangulation between the IR camera and the projector near the two ends of the 80 mm
    # body, ~40 mm apart (not published): the baseline IS the projector offset, as for the Astra S.
    stereo_baseline_m=0.040, projector_offset_m=0.040,
    # Typical: the Astra S's 0.12 px matching over a baseline about half as long: sigma_z = z^2 s / (f B)
    # = 1.4 mm at 0.5 m and 5.4 mm at 1 m (the Astra S: 0.7 and 2.9 mm).
    sigma_disparity_px=0.12,
    depth_range_m=(0.35, 1.0),                   # [AMS]: optimised range 0.35-1.0 m
    depth_scale=0.001,                           # typical: the SDK's default depth unit, 1 mm
    # Typical UVC colour auto-exposure of a payment module: a brighter target, slow, gain to 8x.
    color_ae=AutoExposureSpec(0.19, 0.15, (100e-6, 1 / 30), (1.0, 8.0)),
    # [OBSDK2]/[UVC]: on the v2 (UVC) firmware the frames carry metadata: colour exposure in 100 µs
    # units and gain as a factor, IR exposure in µs (typical of the SDK's metadata).
    color_units=MetadataUnits(GAIN_MULTIPLIER, 100.0), ir_units=MetadataUnits(GAIN_MULTIPLIER, 1.0),
    # The IR exposure is the host's to set [AMS-IR]: Orbbec SDK v2 builds the Astra Mini S Pro (PID
    # 0x065e) as an AstraMiniDevice, whose OpenNI base registers OB_PROP_DEPTH_EXPOSURE_INT and
    # OB_PROP_DEPTH_GAIN_INT read-write and aliases OB_PROP_IR_EXPOSURE_INT / OB_PROP_IR_GAIN_INT /
    # OB_PROP_IR_AUTO_EXPOSURE_BOOL to them; on the OpenNI2 (firmware 1.x) path the same register is
    # the device property OBEXTENSION_ID_IR_EXP. So a lock may set it (``ir_exposure_range_s``); the
    # range's units in the device are not published (the SDK reports a range at run time), so
    # 0.1 ms up to the frame period is typical, not read. The device's own IR auto-exposure is not
    # used (``ir_auto_exposure``): the engine holds its fixed 6.6 ms (typical) until the host sets
    # another. An IR auto-exposure down to 0.1 ms was tried first: at 6000 lux it shortened the
    # exposure until the pattern sank into the shot noise (DEPTH_SPARSE in doctor's 6000-lux row).
    # (Until session 18 the profile allowed no other exposure at all, a guess the sources above
    # contradict: the exposure plan's cut was refused and 36 open-shade sessions clipped.)
    ir_exposure_default_s=0.0066, ir_exposure_range_s=(100e-6, 0.030), ir_gain_default=1.0,
    ir_auto_exposure=False,
    # Typical: the series' laser with a diffractive speckle pattern, switched by the SDK's laser property.
    projector="830 nm laser with diffractive speckle pattern (on/off only)", projector_power=None,
    projector_nominal_mw=150.0,                  # typical: as the Astra S
    projector_latency_frames=1, projector_jitter=0.25,   # typical: a USB property write on the UVC firmware
    structured_light=True, ir_band="nir",
    depth_shutter="global",                      # typical (the Astra 2's datasheet: IR global shutter)
    color_shutter="rolling",                     # typical of a VGA UVC colour module
    color_from_depth_imager=False,
    # [AMS]: depth and IR at VGA and QVGA, 30 fps; colour VGA and QVGA at 30 fps. HD colour at 30 fps is
    # the "Pro" models' UVC colour camera ([AMS]'s Astra Pro column; the plain Mini S gives HD at 10 fps):
    # recalled for the Mini S Pro, not read.
    stream_modes=_modes({
        "depth": [(640, 480, (30,)), (320, 240, (30,))],
        "ir": [(640, 480, (30,)), (320, 240, (30,))],
        "color": [(1280, 720, (10, 30)), (640, 480, (30,)), (320, 240, (30,))],
    }),
)

GEMINI2L = CameraProfile(
    name="gemini2l", model="Orbbec Gemini 2 L (long-baseline active stereo)",
    # [G2L-KB]: 91° horizontally at 1280x800, as the Gemini 2; this unit's calibration 91.4° (within
    # the usual ±3°): fx 625.3 at 1280x800, x0.6 = 375.2 at 640x480 (modes.py). Principal point typical.
    depth_intrinsics=Intrinsics(640, 480, 375.2, 375.2, 321.3, 238.2, DistortionModel.INVERSE_BROWN_CONRADY),
    # [G2L-KB]: colour 86° x 55° (16:9) -> at 1920x1080 fx = 960 / tan(43°) = 1029.5; this unit's
    # 86.3°: fx 1024.0, and 640x480 is a 1440x1080 crop scaled by 4/9: fx 455.1. Distortion typical.
    color_intrinsics=Intrinsics(640, 480, 455.1, 455.3, 318.9, 241.6, DistortionModel.BROWN_CONRADY,
                                (0.041, -0.058, -0.0004, 0.0006, 0.014)),
    # Typical: the colour module beside the left imager on the 100 mm bar, ~15 mm along +x.
    depth_to_color=Extrinsics.from_arrays(rotation(np.deg2rad(0.10), np.deg2rad(-0.12), np.deg2rad(0.06)),
                                          np.array([0.0152, -0.0002, 0.0011])),
    stereo_baseline_m=0.100,                     # recalled: Orbbec's 100 mm for the Gemini 2 L
    projector_offset_m=0.052,                    # typical: the projector near the middle of the bar
    # Typical: the Gemini 2's depth engine (0.11 px) over twice its baseline: sigma_z = z^2 s / (f B)
    # = 0.73 mm at 0.5 m at 640x480 (the Gemini 2: 1.5 mm).
    sigma_disparity_px=0.11,
    depth_range_m=(0.20, 7.0),                   # [G2L-KB]: from 0.2 m; 7 m: the ideal range's end, recalled
    depth_scale=0.001,                           # typical: the SDK's default depth unit, 1 mm
    # [G2L-ROS] colour AE on by default; its target, speed and gain limit typical of a UVC module.
    color_ae=AutoExposureSpec(0.18, 0.20, (100e-6, 1 / 30), (1.0, 16.0)),
    # [UVC]/Orbbec SDK v2 frame metadata: colour exposure in 100 µs units, IR exposure in µs, gains as factors.
    color_units=MetadataUnits(GAIN_MULTIPLIER, 100.0), ir_units=MetadataUnits(GAIN_MULTIPLIER, 1.0),
    # [G2L-ROS]: the IR auto-exposure is on by default (enable_ir_auto_exposure), with a manual IR
    # exposure the SDK sets in µs; its limits and default typical (the Gemini 2's).
    ir_exposure_default_s=0.004, ir_exposure_range_s=(20e-6, 0.1), ir_gain_default=1.0,
    # Active stereo IR: an 850 nm dot projector (typical wavelength) switched by the SDK's laser property.
    projector="850 nm VCSEL dot projector (on/off only)", projector_power=None,
    projector_nominal_mw=150.0,                  # typical: as the Gemini 2 (no published power)
    projector_latency_frames=1, projector_jitter=0.20,   # typical: a USB property write
    structured_light=False, ir_band="nir", depth_shutter="global",
    color_shutter="rolling",                     # typical of a UVC colour module
    color_from_depth_imager=False,
    # [G2L-KB] the largest depth mode (1280x800@30); [G2L-ROS] the 640x400 modes at 15 fps by default;
    # 640x480 (for 4:3 registration), 60 fps at the small modes and the colour sizes typical of the SDK's lists.
    stream_modes=_modes({
        "depth": [(1280, 800, (5, 10, 15, 30)), (640, 480, (5, 10, 15, 30, 60)), (640, 400, (5, 10, 15, 30, 60))],
        "ir": [(1280, 800, (5, 10, 15, 30)), (640, 480, (5, 10, 15, 30, 60)), (640, 400, (5, 10, 15, 30, 60))],
        "color": [(1920, 1080, (5, 10, 15, 30)), (1280, 720, (5, 10, 15, 30)), (640, 480, (5, 10, 15, 30)),
                  (640, 400, (5, 10, 15, 30))],
    }),
)

GEMINI335L = CameraProfile(
    name="gemini335l", model="Orbbec Gemini 335L (long-baseline active stereo, no IR-pass filter)",
    # [G335L]: depth 90°x65° at 1280x800; this unit's calibration 90.6° (within the usual ±3°): fx at
    # 1280x800 = 640 / tan(45.3°) = 633.3, x0.6 = 380.0 at 640x480 (modes.py). Principal point typical.
    depth_intrinsics=Intrinsics(640, 480, 380.0, 380.0, 322.1, 237.4, DistortionModel.INVERSE_BROWN_CONRADY),
    # [G335L]: colour 94° at 1280x800; this unit's 93.2° (within ±3°): fx = 640 / tan(46.6°) = 605.4,
    # x0.6 = 363.2 at 640x480. Distortion typical of a 94° module.
    color_intrinsics=Intrinsics(640, 480, 363.2, 363.1, 318.2, 241.0, DistortionModel.BROWN_CONRADY,
                                (-0.058, 0.049, 0.0004, -0.0005, -0.012)),
    # [G330-CS] table 2: colour 23.75 mm along +x from the left imager (nominal); this unit's calibration
    # within 0.1 mm of it (typical of a factory calibration), rotation typical.
    depth_to_color=Extrinsics.from_arrays(rotation(np.deg2rad(-0.07), np.deg2rad(0.11), np.deg2rad(0.05)),
                                          np.array([0.02371, 0.00003, -0.00009])),
    stereo_baseline_m=0.095,                     # [G335L]: 95 mm, as the 336L
    projector_offset_m=0.055,                    # typical: as the 336L's
    # Typical: the 330 series' matching (0.10 px at 640x480): sigma_z = 0.7 mm at 0.5 m.
    sigma_disparity_px=0.10,
    depth_range_m=(0.25, 6.0),                   # [G335L]: ideal 0.25-6 m (it reports 0.17-20 m)
    depth_scale=0.001,                           # typical: the SDK's default depth unit, 1 mm
    # Typical UVC colour auto-exposure (the 336L's: same module).
    color_ae=AutoExposureSpec(0.16, 0.24, (100e-6, 1 / 30), (1.0, 16.0)),
    # [UVC]/Orbbec SDK v2 frame metadata: colour exposure in 100 µs units, IR exposure in µs, gains as factors.
    color_units=MetadataUnits(GAIN_MULTIPLIER, 100.0), ir_units=MetadataUnits(GAIN_MULTIPLIER, 1.0),
    # [G335L]: the SDK's IR auto-exposure on by default, the host may lock OB_PROP_IR_EXPOSURE_INT;
    # limits and default typical (the 336L's).
    ir_exposure_default_s=0.005, ir_exposure_range_s=(20e-6, 0.1), ir_gain_default=1.0,
    # [G335L]: 850 nm dot projector switched on and off through the SDK's laser switch (no mW setting).
    projector="850 nm VCSEL dot projector (on/off only)", projector_power=None,
    projector_nominal_mw=150.0,
    projector_latency_frames=1, projector_jitter=0.15,   # typical: a USB property write
    structured_light=False,
    ir_band="nir",                               # broadband imagers; the 850 nm part modelled ([G335L])
    depth_shutter="global",
    color_shutter="global",                      # [G335L]: the 336L's global-shutter colour module
    color_from_depth_imager=False,
    # [G335L]: no IR-pass filter (the 336L adds one); monochrome imagers assumed (recalled, not read).
    visible_response=(1.0, 1.0, 1.0),
    stream_modes=G330_STREAM_MODES,              # as the 336L ([G336L], the 330 series' SDK lists)
)

GEMINI336 = CameraProfile(
    name="gemini336", model="Orbbec Gemini 336 (short-baseline active stereo, IR-pass)",
    # [G336-SEEED]: the Gemini 335's optics behind an IR-pass filter: depth 90°x65° at 1280x800, 50 mm
    # baseline; this unit's calibration 92.0° (within the usual ±3°): fx at 1280x800 = 640 / tan(46.0°)
    # = 618.0, x0.6 = 370.8 at 640x480 (modes.py). Principal point typical.
    depth_intrinsics=Intrinsics(640, 480, 370.8, 370.8, 318.6, 241.9, DistortionModel.INVERSE_BROWN_CONRADY),
    # [G336-SEEED]: colour 86°x55° (16:9); this unit's 87.1° at 1280x800: fx = 640 / tan(43.55°) = 673.3,
    # x0.6 = 404.0 at 640x480. Distortion typical of a wide-angle module (another unit's than gemini335).
    color_intrinsics=Intrinsics(640, 480, 404.0, 403.8, 321.5, 238.9, DistortionModel.BROWN_CONRADY,
                                (-0.052, 0.046, -0.0003, 0.0005, -0.011)),
    # [G330-CS]: the Gemini 335's colour origin, 14.00 mm along +x and 2.02 mm along +z from the left
    # imager (the 336 shares its housing, recalled); this unit within 0.1 mm, rotation typical.
    depth_to_color=Extrinsics.from_arrays(rotation(np.deg2rad(-0.09), np.deg2rad(0.07), np.deg2rad(-0.04)),
                                          np.array([0.01406, -0.00004, 0.00198])),
    stereo_baseline_m=0.050,                     # [G336-SEEED]: 50 mm
    projector_offset_m=0.032,                    # typical: as the Gemini 335's
    sigma_disparity_px=0.10,                     # typical: the 330 series' matching, as the Gemini 335
    depth_range_m=(0.26, 3.0),                   # as the Gemini 335 (ideal 0.26-3 m), recalled
    depth_scale=0.001,
    color_ae=AutoExposureSpec(0.16, 0.20, (100e-6, 1 / 30), (1.0, 16.0)),   # typical UVC colour AE
    color_units=MetadataUnits(GAIN_MULTIPLIER, 100.0), ir_units=MetadataUnits(GAIN_MULTIPLIER, 1.0),
    # Orbbec SDK v2 (the 330 series): the IR auto-exposure on by default, OB_PROP_IR_EXPOSURE_INT (µs)
    # as the manual control (recalled from the wrapper's enable_ir_auto_exposure/ir_exposure; limits typical).
    ir_exposure_default_s=0.005, ir_exposure_range_s=(20e-6, 0.1), ir_gain_default=1.0,
    # [G336-SEEED]: 850 nm dot projector, on/off through OB_PROP_LASER_CONTROL_INT (no mW setting).
    projector="850 nm VCSEL dot projector (on/off only)", projector_power=None,
    projector_nominal_mw=150.0,
    projector_latency_frames=1, projector_jitter=0.15,   # typical: a USB property write
    structured_light=False,
    ir_band="nir",                               # [G336-SEEED]: "Filter Cover: Yes, IR Pass"
    depth_shutter="global",
    color_shutter="rolling",                     # [G336-SEEED]: "Rolling Shutter"
    color_from_depth_imager=False,
    stream_modes=G335_STREAM_MODES,              # [G336-SEEED]: colour up to 1920x1080 @ 30, as the 335's
)

D435F = CameraProfile(
    name="d435f", model="Intel RealSense D435f (D435 with an IR-pass filter)",
    # [D435F], [DS]: the D435's optics (87°x58° depth field, OV9282 global-shutter imagers, 50 mm
    # baseline); this unit's calibration 89.5° at 1280x800 (within [DS]'s 87° ± 3°): fx = 640 /
    # tan(44.75°) = 646.0, x0.6 = 387.6 at 640x480 (modes.py). Principal point typical.
    depth_intrinsics=Intrinsics(640, 480, 387.6, 387.6, 321.2, 239.6, DistortionModel.INVERSE_BROWN_CONRADY),
    # [DS]: the D435's OV2740 rolling-shutter colour module, 69°x42° at 1920x1080; this unit's fx
    # 612.1 at 640x480 (typical spread around the D435 profile's 615). Distortion another unit's.
    color_intrinsics=Intrinsics(640, 480, 612.1, 612.4, 318.7, 243.0, DistortionModel.BROWN_CONRADY,
                                (0.066, -0.131, -0.0004, 0.0003, 0.047)),
    # The colour module 14.8 mm along +x of the left imager as on the D435 (typical calibration).
    depth_to_color=Extrinsics.from_arrays(rotation(np.deg2rad(-0.10), np.deg2rad(0.17), np.deg2rad(-0.06)),
                                          np.array([0.0147, -0.0001, 0.0002])),
    stereo_baseline_m=0.050,                     # [DS]: 50 mm
    projector_offset_m=0.025,                    # between the imagers, as the D435
    sigma_disparity_px=0.08,                     # as the D435
    depth_range_m=(0.20, 3.0),                   # as the D435
    depth_scale=0.001,
    color_ae=AutoExposureSpec(0.18, 0.25, (50e-6, 1 / 30), (1.0, 16.0)),   # typical, the D435's module
    color_units=_RS_COLOR_UNITS, ir_units=_RS_IR_UNITS,
    # [LRS-6384]: the depth sensor's exposure in µs, 1..165000, default 8500; its auto-exposure on by
    # default (librealsense's enable_auto_exposure), the host locks it by setting exposure.
    ir_exposure_default_s=0.0085, ir_exposure_range_s=(1e-6, 0.165), ir_gain_default=1.0,
    projector="850 nm VCSEL dot projector, 86°x57° field of projection", projector_power=_RS_POWER,
    projector_nominal_mw=150.0,
    projector_latency_frames=1, projector_jitter=0.05,    # typical, as the D435
    structured_light=False,
    ir_band="nir",                               # [D435F]: IR-pass filter over the stereo imagers' lenses
    depth_shutter="global", color_shutter="rolling",
    color_from_depth_imager=False,
    stream_modes=D435.stream_modes,              # [D435F]: the D435's modes
)

D455F = CameraProfile(
    name="d455f", model="Intel RealSense D455f (D455 with an IR-pass filter)",
    # [D455F], [DS]: the D455's optics (87°x58° depth field, OV9282 global-shutter imagers, 95 mm
    # baseline); this unit's calibration 88.6° at 1280x800 (within [DS]'s 87° ± 3°): fx = 640 /
    # tan(44.3°) = 656.4, x0.6 = 393.8 at 640x480 (modes.py). Principal point typical.
    depth_intrinsics=Intrinsics(640, 480, 393.8, 393.8, 318.9, 241.3, DistortionModel.INVERSE_BROWN_CONRADY),
    # [DS]: the D455's OV9782 global-shutter colour module, 90°x65° at 1280x800; this unit's fx 634.0
    # at 1280x800 (x0.6 = 380.4 at 640x480; typical spread around [D455-CAL]'s 629.6). Distortion
    # another unit's (typical, of [D455-CAL]'s magnitude).
    color_intrinsics=Intrinsics(640, 480, 380.4, 380.1, 322.6, 236.9, DistortionModel.BROWN_CONRADY,
                                (-0.0541, 0.0622, -0.00071, 0.00052, -0.0187)),
    # The colour module ~59 mm from the left imager toward the right one, as on the D455 (typical).
    depth_to_color=Extrinsics.from_arrays(rotation(np.deg2rad(0.06), np.deg2rad(-0.11), np.deg2rad(0.05)),
                                          np.array([-0.0589, -0.0001, 0.0003])),
    stereo_baseline_m=0.095,                     # [DS]: 95 mm
    projector_offset_m=0.045,                    # between the imagers, as the D455
    sigma_disparity_px=0.08,                     # as the D455
    depth_range_m=(0.40, 6.0),                   # as the D455
    depth_scale=0.001,
    color_ae=AutoExposureSpec(0.17, 0.30, (20e-6, 1 / 30), (1.0, 8.0)),   # typical, the D455's module
    color_units=_RS_COLOR_UNITS, ir_units=_RS_IR_UNITS,
    # [D455F]: the depth sensor's exposure in µs (1..200000 as the D455 profile, default 8500), its
    # auto-exposure on by default (librealsense's enable_auto_exposure); the host locks it by setting it.
    ir_exposure_default_s=0.0085, ir_exposure_range_s=(1e-6, 0.2), ir_gain_default=1.0,
    projector="850 nm VCSEL dot projector, 90°x63° field of projection", projector_power=_RS_POWER,
    projector_nominal_mw=150.0,
    projector_latency_frames=1, projector_jitter=0.05,    # typical, as the D455
    structured_light=False,
    ir_band="nir",                               # [D455F]: a 750 nm long-pass over the stereo imagers
    depth_shutter="global", color_shutter="global",
    color_from_depth_imager=False,
    stream_modes=D455.stream_modes,              # [D455F]: the D455's modes
)

D457 = CameraProfile(
    name="d457", model="Intel RealSense D457 (D450 module, GMSL/FAKRA)",
    # [D457], [DS]: the D450 module's optics (87°x58° ±3° depth field, 95 mm baseline); this unit's
    # calibration 87.6° at 1280x800: fx = 640 / tan(43.8°) = 667.3, x0.6 = 400.4 at 640x480 (modes.py).
    depth_intrinsics=Intrinsics(640, 480, 400.4, 400.4, 320.7, 238.6, DistortionModel.INVERSE_BROWN_CONRADY),
    # The OV9782 colour sensor, 90°x65° at 1280x800; this unit's fx 641.2 at 1280x800 (x0.6 = 384.7;
    # typical spread around [D455-CAL]'s 629.6), distortion of [D455-CAL]'s magnitude (typical).
    color_intrinsics=Intrinsics(640, 480, 384.7, 384.5, 317.2, 241.8, DistortionModel.BROWN_CONRADY,
                                (-0.0572, 0.0648, 0.00041, -0.00063, -0.0199)),
    # The colour sensor ~59 mm from the left imager toward the right one, as on the D455 (typical).
    depth_to_color=Extrinsics.from_arrays(rotation(np.deg2rad(-0.05), np.deg2rad(0.09), np.deg2rad(0.07)),
                                          np.array([-0.0593, 0.0001, 0.0002])),
    stereo_baseline_m=0.095,                     # [DS]: 95 mm
    projector_offset_m=0.045,                    # between the imagers, as the D455
    sigma_disparity_px=0.08,                     # as the D455 (same imagers and ASIC family)
    depth_range_m=(0.40, 6.0),                   # as the D455; [D457]: ~52 cm at 1280x720, ideal 0.6-6 m
    depth_scale=0.001,
    color_ae=AutoExposureSpec(0.17, 0.30, (20e-6, 1 / 30), (1.0, 8.0)),   # typical, the D455's sensor
    color_units=_RS_COLOR_UNITS, ir_units=_RS_IR_UNITS,
    # [D457]: the d4xx driver's depth exposure, 1..200000 µs, 33000 µs by default, auto-exposure on;
    # the host locks it by setting it (librealsense's exposure option, µs as on USB).
    ir_exposure_default_s=0.033, ir_exposure_range_s=(1e-6, 0.2), ir_gain_default=1.0,
    projector="850 nm VCSEL dot projector, 90°x63° field of projection", projector_power=_RS_POWER,
    projector_nominal_mw=150.0,
    projector_latency_frames=1, projector_jitter=0.05,    # typical, as the D455
    structured_light=False,
    ir_band="nir",                               # [D457]: rendered as the D455 (the 850 nm part)
    depth_shutter="global", color_shutter="global",
    color_from_depth_imager=False,
    stream_modes=D455.stream_modes,              # [DS]: the D450 module's modes, as the D455
)

D435I = CameraProfile(
    name="d435i", model="Intel RealSense D435i (D435 with an IMU)",
    # [D435I]: the D430 module (OV9282 global-shutter imagers, 50 mm baseline, 87°x58° depth field)
    # with a Bosch IMU; this unit's calibration 86.1° at 1280x800 (within [DS]'s 87° ± 3°): fx = 640 /
    # tan(43.05°) = 685.8, x0.6 = 411.5 at 640x480 (modes.py). Principal point typical.
    depth_intrinsics=Intrinsics(640, 480, 411.5, 411.5, 318.6, 241.3, DistortionModel.INVERSE_BROWN_CONRADY),
    # [DS]: the D435's OV2740 rolling-shutter colour module, 69°x42° at 1920x1080; this unit's fx
    # 619.4 at 640x480 (typical spread around the D435 profile's 615). Distortion another unit's.
    color_intrinsics=Intrinsics(640, 480, 619.4, 619.0, 323.9, 238.2, DistortionModel.BROWN_CONRADY,
                                (0.074, -0.142, 0.0003, 0.0005, 0.055)),
    # The colour module 14.8 mm along +x of the left imager as on the D435 (typical calibration).
    depth_to_color=Extrinsics.from_arrays(rotation(np.deg2rad(0.08), np.deg2rad(-0.14), np.deg2rad(0.11)),
                                          np.array([0.0149, 0.0002, -0.0001])),
    stereo_baseline_m=0.050,                     # [DS]: 50 mm
    projector_offset_m=0.025,                    # between the imagers, as the D435
    sigma_disparity_px=0.08,                     # as the D435
    depth_range_m=(0.20, 3.0),                   # as the D435
    depth_scale=0.001,
    color_ae=AutoExposureSpec(0.18, 0.25, (50e-6, 1 / 30), (1.0, 16.0)),   # typical, the D435's module
    color_units=_RS_COLOR_UNITS, ir_units=_RS_IR_UNITS,
    ir_exposure_default_s=0.0085, ir_exposure_range_s=(1e-6, 0.165), ir_gain_default=1.0,   # [LRS-6384]
    projector="850 nm VCSEL dot projector, 86°x57° field of projection", projector_power=_RS_POWER,
    projector_nominal_mw=150.0,
    projector_latency_frames=1, projector_jitter=0.05,    # typical, as the D435
    structured_light=False, ir_band="nir", depth_shutter="global",
    color_shutter="rolling",                     # [DS]: the OV2740 is a rolling-shutter sensor
    color_from_depth_imager=False,
    # [D435I]: "not equipped with an infrared-blocking filter on its sensors" (monochrome OV9282s,
    # [LRS-13245]): visible and 850 nm alike (leak.py's recalled curve).
    visible_response=(1.0, 1.0, 1.0),
    stream_modes=D435.stream_modes,              # [DS]: the D435's modes
)

D456 = CameraProfile(
    name="d456", model="Intel RealSense D456 (D455 in an IP65 casing)",
    # [D456], [DS]: the D455's optics (87°x58° ±3° depth field, 95 mm baseline); this unit's calibration
    # 89.8° at 1280x800: fx = 640 / tan(44.9°) = 642.2, x0.6 = 385.3 at 640x480 (modes.py).
    depth_intrinsics=Intrinsics(640, 480, 385.3, 385.3, 322.3, 239.1, DistortionModel.INVERSE_BROWN_CONRADY),
    # The OV9782 colour sensor, 90°x65° at 1280x800; this unit's fx 625.3 at 1280x800 (x0.6 = 375.2;
    # typical spread around [D455-CAL]'s 629.6), distortion of [D455-CAL]'s magnitude (typical).
    color_intrinsics=Intrinsics(640, 480, 375.2, 374.9, 319.8, 240.6, DistortionModel.BROWN_CONRADY,
                                (-0.0549, 0.0617, 0.00058, -0.00047, -0.0172)),
    # The colour sensor ~59 mm from the left imager toward the right one, as on the D455 (typical).
    depth_to_color=Extrinsics.from_arrays(rotation(np.deg2rad(0.04), np.deg2rad(-0.12), np.deg2rad(-0.06)),
                                          np.array([-0.0590, -0.0002, 0.0003])),
    stereo_baseline_m=0.095,                     # [DS]: 95 mm
    projector_offset_m=0.045,                    # between the imagers, as the D455
    sigma_disparity_px=0.08,                     # as the D455 (the same imagers)
    depth_range_m=(0.40, 6.0),                   # as the D455 (realsense_device's D456 row)
    depth_scale=0.001,
    color_ae=AutoExposureSpec(0.17, 0.30, (20e-6, 1 / 30), (1.0, 8.0)),   # typical, the D455's sensor
    color_units=_RS_COLOR_UNITS, ir_units=_RS_IR_UNITS,
    ir_exposure_default_s=0.0085, ir_exposure_range_s=(1e-6, 0.2), ir_gain_default=1.0,   # a USB D455's
    projector="850 nm VCSEL dot projector, 90°x63° field of projection", projector_power=_RS_POWER,
    projector_nominal_mw=150.0,
    projector_latency_frames=1, projector_jitter=0.05,    # typical, as the D455
    structured_light=False,
    ir_band="nir",                               # [D456]: rendered as the D455 (the 850 nm part)
    depth_shutter="global", color_shutter="global",
    color_from_depth_imager=False,
    stream_modes=D455.stream_modes,              # [D456]: the D455's modes
)

# The 335Le is the 335L's stereo module on Gigabit Ethernet (recalled): every field the 335L's but another unit's
# calibration and the projector's switching, a network property write.
GEMINI335LE = replace(
    GEMINI335L,
    name="gemini335le", model="Orbbec Gemini 335Le (the 335L's stereo on Gigabit Ethernet, no IR-pass filter)",
    # [G335LE], [G335L]: depth 90°x65° at 1280x800; this unit's calibration 90.8° (within ±3°): fx at
    # 1280x800 = 640 / tan(45.4°) = 631.5, x0.6 = 378.9 at 640x480 (modes.py). Principal point typical.
    depth_intrinsics=Intrinsics(640, 480, 378.9, 378.9, 317.4, 242.2, DistortionModel.INVERSE_BROWN_CONRADY),
    # [G335L]: colour 94° at 1280x800; this unit's 94.8° (within ±3°): fx = 640 / tan(47.4°) = 588.6,
    # x0.6 = 353.2 at 640x480. Distortion typical of a 94° module.
    color_intrinsics=Intrinsics(640, 480, 353.2, 353.0, 321.5, 238.9, DistortionModel.BROWN_CONRADY,
                                (-0.061, 0.052, -0.0003, 0.0004, -0.013)),
    # [G330-CS] table 2: colour 23.75 mm along +x from the left imager (nominal); this unit within 0.1 mm.
    depth_to_color=Extrinsics.from_arrays(rotation(np.deg2rad(0.09), np.deg2rad(-0.05), np.deg2rad(-0.08)),
                                          np.array([0.02381, -0.00004, 0.00006])),
    projector_jitter=0.30,                       # [G335LE]: a network property write (assumed)
)

GEMINI330 = replace(
    GEMINI335,
    name="gemini330", model="Orbbec Gemini 330 (the 335's stereo without its IMU, no IR-pass filter)",
    # [G330], [G335]: depth 90°x65° at 1280x800; this unit's calibration 88.8° (within ±3°): fx at
    # 1280x800 = 640 / tan(44.4°) = 653.7, x0.6 = 392.2 at 640x480 (modes.py). Principal point typical.
    depth_intrinsics=Intrinsics(640, 480, 392.2, 392.1, 322.6, 236.9, DistortionModel.INVERSE_BROWN_CONRADY),
    # [G335]: colour 86° at 1280x800; this unit's 86.9° (within ±3°): fx = 640 / tan(43.45°) = 674.7,
    # x0.6 = 404.8 at 640x480. Distortion typical of the 335's wide-angle module, this unit's.
    color_intrinsics=Intrinsics(640, 480, 404.8, 404.5, 316.9, 243.0, DistortionModel.BROWN_CONRADY,
                                (-0.052, 0.044, -0.0005, 0.0006, -0.011)),
    # [G330-CS]: colour 14.00 mm along +x and 2.02 mm along +z from the left imager; this unit within 0.1 mm.
    depth_to_color=Extrinsics.from_arrays(rotation(np.deg2rad(-0.07), np.deg2rad(0.11), np.deg2rad(0.04)),
                                          np.array([0.01407, 0.00005, 0.00196])),
)

# The D436 is rendered as the D435 (recalled, not read: a D430-class stereo module, the D435's optics and
# OV2740 colour module) with another unit's calibration and, where the 435 has none, an IR-pass filter.
D436 = replace(
    D435,
    name="d436", model="Intel RealSense D436 (the D435's stereo and colour optics, IR-pass as recalled)",
    # [D436], [DS]: depth 87°x58°; this unit's 640x480 fx 381.3 (the D435's 382.6 within a unit's spread).
    depth_intrinsics=Intrinsics(640, 480, 381.3, 381.2, 321.1, 239.7, DistortionModel.INVERSE_BROWN_CONRADY),
    # [DS]: the OV2740 69°x42°; this unit's fx 609.7 at 640x480 (a 1440x1080 crop x 0.444), distortion typical.
    color_intrinsics=Intrinsics(640, 480, 609.7, 609.9, 318.6, 243.4, DistortionModel.BROWN_CONRADY,
                                (0.066, -0.131, -0.0005, 0.0003, 0.049)),
    depth_to_color=Extrinsics.from_arrays(rotation(np.deg2rad(-0.08), np.deg2rad(0.15), np.deg2rad(-0.03)),
                                          np.array([0.0151, -0.0002, 0.0002])),
    # [D436]: whether its imagers carry an IR-pass filter was not reached; rendered as filtered (``ir_leak``
    # refused, as for the D456 and the D457), the "nir" band alone as for the D435f.
    visible_response=None,
)

# The 335Lg is the 335L's stereo module on GMSL2 (recalled): every field the 335L's but another unit's
# calibration and the projector's switching over the link's control channel.
GEMINI335LG = replace(
    GEMINI335L,
    name="gemini335lg", model="Orbbec Gemini 335Lg (the 335L's stereo on GMSL2, no IR-pass filter)",
    # [G335LG], [G335L]: depth 90°x65° at 1280x800; this unit's calibration 89.1° (within ±3°): fx at
    # 1280x800 = 640 / tan(44.56°) = 650.0, x0.6 = 390.0 at 640x480 (modes.py). Principal point typical.
    depth_intrinsics=Intrinsics(640, 480, 390.0, 390.0, 319.2, 243.6, DistortionModel.INVERSE_BROWN_CONRADY),
    # [G335L]: colour 94° at 1280x800; this unit's 95.3° (within ±3°): fx = 640 / tan(47.65°) = 583.4,
    # x0.6 = 350.0 at 640x480. Distortion typical of a 94° module.
    color_intrinsics=Intrinsics(640, 480, 350.0, 349.8, 323.9, 237.7, DistortionModel.BROWN_CONRADY,
                                (-0.064, 0.055, 0.0002, -0.0003, -0.014)),
    # [G330-CS] table 2: colour 23.75 mm along +x from the left imager (nominal); this unit within 0.1 mm.
    depth_to_color=Extrinsics.from_arrays(rotation(np.deg2rad(0.05), np.deg2rad(-0.09), np.deg2rad(0.07)),
                                          np.array([0.02367, 0.00006, -0.00004])),
    projector_jitter=0.20,                       # [G335LG]: the GMSL link's control channel (assumed)
)


# The Gemini 215 is rendered as the Gemini 2 ([G215]: its own figures not reached) with another unit's
# calibration and the laser switch one frame late a little more often (assumed).
GEMINI215 = replace(
    GEMINI2,
    name="gemini215", model="Orbbec Gemini 215 (short-range active stereo, rendered as the Gemini 2)",
    # [G215], [G2-SEEED]: depth 91° at 1280x800; this unit's 92.2° (a unit's spread): fx at 1280x800 =
    # 640 / tan(46.1°) = 615.0, x0.6 = 369.0 at 640x480 (modes.py). Principal point typical.
    depth_intrinsics=Intrinsics(640, 480, 369.0, 369.1, 321.4, 238.2, DistortionModel.INVERSE_BROWN_CONRADY),
    # The Gemini 2's 86° colour (recalled); this unit's 85.1°: fx = 960 / tan(42.55°) = 1045.4 at 1920x1080,
    # x4/9 = 464.6 at 640x480. Distortion typical (barrel).
    color_intrinsics=Intrinsics(640, 480, 464.6, 464.3, 318.1, 241.6, DistortionModel.BROWN_CONRADY,
                                (0.041, -0.058, -0.0004, 0.0002, 0.014)),
    depth_to_color=Extrinsics.from_arrays(rotation(np.deg2rad(0.06), np.deg2rad(-0.11), np.deg2rad(0.04)),
                                          np.array([0.0128, -0.0002, 0.0009])),
    projector_jitter=0.25,                       # [G215]: a USB property write, one frame late 1 in 4 (assumed)
)


# The Gemini 305 ([G305-SEEED], [G305-ROS]): the 335's depth engine and laser switch on an 18 mm stereo pair
# of colour imagers with no IR-pass filter, a 94° global-shutter colour sensor at up to 1280x800.
GEMINI305 = replace(
    GEMINI335,
    name="gemini305", model="Orbbec Gemini 305 (close-range stereo, 18 mm baseline, colour imagers)",
    # [G305-SEEED]: depth 88° at 1280x800 -> fx = 640 / tan(44°) = 662.7, x0.6 = 397.6 at 640x480 (modes.py);
    # this unit's 88.3° (within ±3°): 395.9. Principal point typical.
    depth_intrinsics=Intrinsics(640, 480, 395.9, 396.0, 318.7, 241.9, DistortionModel.INVERSE_BROWN_CONRADY),
    # [G305-SEEED]: colour 94° at 1280x800 -> fx = 640 / tan(47°) = 596.8, x0.6 = 358.1; this unit's 93.6°:
    # 360.7. Distortion typical of a 94° module (as the 335L's).
    color_intrinsics=Intrinsics(640, 480, 360.7, 360.5, 321.2, 238.4, DistortionModel.BROWN_CONRADY,
                                (-0.061, 0.052, 0.0003, -0.0002, -0.013)),
    # Typical: the colour sensor beside the left imager in the 42 mm body, ~9 mm along +x (not read).
    depth_to_color=Extrinsics.from_arrays(rotation(np.deg2rad(0.08), np.deg2rad(-0.06), np.deg2rad(0.05)),
                                          np.array([0.0091, 0.0001, 0.0004])),
    stereo_baseline_m=0.018,                     # [G305-SEEED]: 18 mm
    projector_offset_m=0.009,                    # assumed: the projector between the imagers' ends, 42 mm body
    # The 335's engine (0.10 px): sigma_z = z^2 s / (f B) = 0.45^2 x 0.10 / (396 x 0.018) = 2.8 mm at 0.45 m,
    # 0.57 %: inside [G305-SEEED]'s <= 1 % at 50 cm.
    sigma_disparity_px=0.10,
    depth_range_m=(0.07, 1.0),                   # [G305-SEEED]: recommended from 7 cm; operating to 1 m+
    projector="850 nm dot projector (on/off, the SDK's laser switch; wavelength assumed)",
    projector_jitter=0.15,                       # a USB property write, as the 335's (typical)
    color_shutter="global",                      # [G305-SEEED]: global shutter
    # [G305-ROS]: "dual color mode": colour (RGGB) stereo imagers, no IR-pass filter (module note above).
    visible_response=(0.25, 0.5, 0.25),
    stream_modes=G330_STREAM_MODES,
)

# The Gemini 210 ([G210]: its datasheet not reached) on the Gemini 2's engine and laser switch, with the
# shorter baseline and wider depth field assumed for a short-range module, and another unit's calibration.
GEMINI210 = replace(
    GEMINI2,
    name="gemini210", model="Orbbec Gemini 210 (short-range active stereo on the Gemini 2's engine; assumed)",
    # Assumed 95° depth at 1280x800 ([G210]); this unit's 95.6°: fx = 640 / tan(47.8°) = 580.8, x0.6 = 348.5 at
    # 640x480 (modes.py). Principal point typical.
    depth_intrinsics=Intrinsics(640, 480, 348.5, 348.7, 317.9, 242.6, DistortionModel.INVERSE_BROWN_CONRADY),
    # The Gemini 2's 86° colour ([G210]: as the Gemini 2's); this unit's 86.6°: fx = 960 / tan(43.3°) =
    # 1019.3 at 1920x1080, x4/9 = 453.0 at 640x480. Distortion typical (barrel).
    color_intrinsics=Intrinsics(640, 480, 453.0, 452.8, 322.7, 237.3, DistortionModel.BROWN_CONRADY,
                                (0.047, -0.063, 0.0003, -0.0004, 0.017)),
    depth_to_color=Extrinsics.from_arrays(rotation(np.deg2rad(-0.09), np.deg2rad(0.07), np.deg2rad(-0.05)),
                                          np.array([0.0105, 0.0003, -0.0006])),
    # Assumed: a 30 mm baseline for a short-range module: sigma_z = z^2 s / (f B) = 0.45^2 x 0.11 / (349 x
    # 0.030) = 2.1 mm at 0.45 m (the Gemini 2's 0.11 px sub-pixel noise).
    stereo_baseline_m=0.030,
    projector_offset_m=0.022,                    # assumed: beside the right imager
    depth_range_m=(0.10, 2.0),                   # [G210]: short range, from ~0.1 m (recalled, not read)
    projector_jitter=0.20,                       # as the Gemini 2's: a USB property write, one frame late 1 in 5
)

# The D555 ([D555]: its datasheet not reached) on the D455's optics and imagers, without an IR-pass filter, on
# Ethernet: another unit's calibration and the projector's switching a network property write.
D555 = replace(
    D455,
    name="d555", model="Intel RealSense D555 (PoE; the D455's optics, no IR-pass filter; recalled)",
    # [D555], [DS]: 87°x58° ±3° depth; this unit's 88.4° at 1280x800: fx = 640 / tan(44.2°) = 658.0, x0.6 = 394.8 at
    # 640x480 (modes.py). Principal point typical.
    depth_intrinsics=Intrinsics(640, 480, 394.8, 394.7, 318.2, 241.4, DistortionModel.INVERSE_BROWN_CONRADY),
    # The OV9782 colour, 90°x65° at 1280x800; this unit's 92.1°: fx 616.7 at 1280x800 (x0.6 = 370.0), distortion
    # of [D455-CAL]'s magnitude (typical).
    color_intrinsics=Intrinsics(640, 480, 370.0, 369.8, 321.8, 237.7, DistortionModel.BROWN_CONRADY,
                                (-0.0563, 0.0589, -0.00071, 0.00052, -0.0158)),
    # The colour sensor ~59 mm from the left imager toward the right one, as on the D455 (typical).
    depth_to_color=Extrinsics.from_arrays(rotation(np.deg2rad(-0.06), np.deg2rad(0.09), np.deg2rad(0.05)),
                                          np.array([-0.0592, 0.0001, -0.0003])),
    projector_jitter=0.30,                       # [D555]: a network property write (assumed, as the 335Le's)
)

# The D435if ([D435IF]): the D435f's filter and the D435i's IMU; another unit's calibration.
D435IF = replace(
    D435F,
    name="d435if", model="Intel RealSense D435if (D435i with the D435f's IR-pass filter)",
    # [DS]: 87°x58° ±3° depth; this unit's 85.4° at 1280x800: fx = 640 / tan(42.7°) = 694.3, x0.6 = 416.6 at
    # 640x480 (modes.py). Principal point typical.
    depth_intrinsics=Intrinsics(640, 480, 416.6, 416.6, 322.7, 238.1, DistortionModel.INVERSE_BROWN_CONRADY),
    # The OV2740 colour module, 69°x42° at 1920x1080; this unit's fx 608.3 at 640x480 (typical spread around
    # the D435 profile's 615). Distortion another unit's.
    color_intrinsics=Intrinsics(640, 480, 608.3, 608.0, 317.4, 242.2, DistortionModel.BROWN_CONRADY,
                                (0.059, -0.122, 0.0005, -0.0002, 0.041)),
    # The colour module 14.8 mm along +x of the left imager as on the D435 (typical calibration).
    depth_to_color=Extrinsics.from_arrays(rotation(np.deg2rad(0.12), np.deg2rad(-0.08), np.deg2rad(0.04)),
                                          np.array([0.0148, 0.0001, 0.0003])),
)

PROFILES: dict[str, CameraProfile] = {p.name: p for p in (D435, D455, D415, D405, ASTRA, GEMINI335, GEMINI2,
                                                          GEMINI336L, ASTRA_MINI_S, GEMINI2L, GEMINI335L,
                                                          GEMINI336, D435F, D455F, D457, D435I, D456,
                                                          GEMINI335LE, GEMINI330, D436, GEMINI335LG,
                                                          GEMINI215, GEMINI305, GEMINI210, D555,
                                                          D435IF)}
DEFAULT = "d435"


def get_profile(name: str) -> CameraProfile:
    """The profile called ``name``; ``DRV_INVALID_URI`` for anything else."""
    try:
        return PROFILES[name]
    except KeyError:
        raise InvalidUri(f"sim://: camera must be one of {', '.join(PROFILES)}, got {name!r}") from None
