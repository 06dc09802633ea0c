"""``python -m trayline`` runs the same CLI as the ``trayline`` console script."""

from trayline.cli.app import main

main()
