"""Camera firmware policy and safe updates (T/IIFAA 3001.1 §7.5 f: firmware upgrade through an API).

A camera on unapproved firmware can lie about its frames, so firmware is a security boundary:

* ``manifest.py`` — the bank's signed manifest of approved firmware per camera model (Ed25519),
  verified at every load, with a sequence floor against replayed old manifests;
* ``policy.py`` — the check at device open (refuse or alert, as configured) and the pure ``judge``
  the server applies to the firmware a probe attests;
* ``update.py`` — check, backup and update through the vendor's update path (``drivers.update``:
  librealsense, Orbbec SDK v2, USB DFU 1.1), verifying hash, version, downgrade rules, and after
  re-enumeration the new version and the camera's identity;
* ``maintenance.py`` — the lock capture sessions and updates share (the maintenance window);
* ``journal.py`` — the on-disk journal that makes an interrupted update visible at the next start;
* ``settings.py`` — the ``[firmware]`` settings; ``progress.py`` — progress bar or JSON events.

Imports go ``agent -> firmware -> drivers``; nothing here imports ``agent`` or ``hil``.
"""
