from kameleoon_server.cli import main

raise SystemExit(main())
