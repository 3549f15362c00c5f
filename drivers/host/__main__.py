from drivers.host.process import main

raise SystemExit(main())
