"""``edgekit`` and ``python -m edgekit``. ``edgekit run`` goes straight to the camera package, so the line
starts without the workstation's libraries (torch, onnx, typer): the same command, code and cost as
``python3 edgekit-device.pyz run``; every other command goes to the CLI (:mod:`edgekit.cli`)."""
import sys


def main() -> None:
    if sys.argv[1:2] == ["run"]:
        from edgekit.camera.app import main as camera

        sys.exit(camera(sys.argv[1:], prog="edgekit"))
    from edgekit.cli import main as cli

    cli()


if __name__ == "__main__":
    main()
