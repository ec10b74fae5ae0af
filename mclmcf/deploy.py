"""`python -m mclmcf.deploy` and `mclmcf-deploy`: the weights as a Hub model repo and the demo as a Gradio Space,
in one command, through huggingface_hub's HTTP API (no git; the library sends large files by LFS or Xet).

    python -m mclmcf.deploy --space OWNER/NAME [--weights DIR | REPO_ID[@REV]] [--weights-repo OWNER/NAME]
                            [--hardware cpu-basic|zero-a10g] [--private]

The Space never carries weights. Where they come from:
- ``--weights DIR`` (default: the bundled ``checkpoints/``) is uploaded to ``--weights-repo`` (default
  ``OWNER/NAME-weights``, beside the Space), a commit only when a file changed;
- ``--weights REPO_ID[@REV]`` names weights already on the Hub; nothing is uploaded.
Either way the Space variable ``MCLMCF_WEIGHTS`` is set to ``REPO_ID@COMMIT``: the weights' commit sha, so that a
later push to the weights repo does not change what the Space serves until the next deploy.

The Space gets the app's files from this checkout (SPACE_FILES), the front matter of README.md with the weights
repo under ``models:``, and nothing else: no tests, benchmarks or checkpoints. Files the Space holds from an
earlier deploy that the app no longer has are deleted. The token comes from ``$HF_TOKEN`` or ``hf auth login``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from huggingface_hub import HfApi, SpaceCard, constants, get_token
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import validate_repo_id

from preprocessing.hub import hub_reachable

from mclmcf.serving.untrusted import parse_repo_id
from mclmcf.serving.weights import DEFAULT_DIR, ENV_VAR, has_weights

ROOT = Path(__file__).resolve().parents[1]
# what the Space runs, relative to the checkout: app.py imports mclmcf and preprocessing from its own folder
SPACE_FILES = ("app.py", "requirements.txt", "packages.txt", "mclmcf/**/*.py", "preprocessing/**/*", "examples/*")
HARDWARE = ("cpu-basic", "zero-a10g")
STEPS = 5


class DeployError(Exception):
    """Something the user can fix (token, arguments, checkout): the message says what."""


def owner_name(value: str) -> str:
    try:
        validate_repo_id(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err
    if value.count("/") != 1:
        raise argparse.ArgumentTypeError(f"'{value}' is not OWNER/NAME")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mclmcf.deploy", description=__doc__.splitlines()[0])
    parser.add_argument("--space", type=owner_name, required=True, help="the Space to create or update, OWNER/NAME")
    parser.add_argument("--weights", default=str(DEFAULT_DIR),
                        help="a weights directory to upload (default: checkpoints/), or weights already on the Hub, "
                             "REPO_ID[@REV]")
    parser.add_argument("--weights-repo", type=owner_name, default=None,
                        help="the model repo a weights directory goes to (default: OWNER/NAME-weights of --space)")
    parser.add_argument("--hardware", choices=HARDWARE, default="cpu-basic",
                        help="the Space's hardware (cpu-basic: 2 vCPU, the measured case; zero-a10g: ZeroGPU)")
    parser.add_argument("--private", action="store_true", help="create the Space and the weights repo private")
    return parser.parse_args(argv)


def step(number: int, text: str) -> None:
    print(f"[{number}/{STEPS}] {text}", flush=True)


def authenticate(api: HfApi) -> str:
    """The user the token belongs to; DeployError when there is no token or the Hub refuses it."""
    if api.token is None:
        raise DeployError("No Hugging Face token. Set HF_TOKEN to a token with write access "
                          "(https://huggingface.co/settings/tokens) or log in once with `hf auth login`.")
    try:
        who = api.whoami()
    except HfHubHTTPError as err:
        if err.response is not None and err.response.status_code == 401:
            raise DeployError("The Hugging Face Hub refused the token (401 Unauthorized). Check HF_TOKEN, or log "
                              "in again with `hf auth login --force`.") from err
        raise
    if who.get("auth", {}).get("accessToken", {}).get("role") == "read":
        raise DeployError("The token is read-only: deploying needs a token with write access "
                          "(https://huggingface.co/settings/tokens).")
    return who["name"]


def publish_weights(api: HfApi, weights: str, weights_repo: str, private: bool) -> str:
    """``REPO_ID@COMMIT`` of the weights the Space will load: ``weights`` uploaded when it is a directory,
    else the Hub revision it names, resolved to its commit."""
    if Path(weights).is_dir():
        if not has_weights(weights):
            raise DeployError(f"'{weights}' holds no config.json + model.safetensors: nothing to deploy.")
        step(2, f"weights: uploading {weights} to the model repo {weights_repo} ...")
        api.create_repo(weights_repo, private=private or None, exist_ok=True)   # None: the account's default
        commit = api.upload_folder(repo_id=weights_repo, folder_path=weights, ignore_patterns=[".*", "__pycache__/*"],
                                   commit_message="Weights for the MCL-MCF demo (mclmcf.deploy)")
        return f"{weights_repo}@{commit.oid}"
    parsed = parse_repo_id(weights)
    if parsed is None:
        raise DeployError(f"--weights '{weights}' is neither a directory nor a Hub repo id (OWNER/NAME[@REV]).")
    step(2, f"weights: using {weights} from the Hub (nothing uploaded) ...")
    return f"{parsed[0]}@{api.model_info(parsed[0], revision=parsed[1]).sha}"


def space_card(weights: str) -> str:
    """The Space's README.md: README.md's front matter (sdk, app_file, ...) with the weights repo under models:."""
    card = SpaceCard.load(ROOT / "README.md")
    weights_repo, _, revision = weights.partition("@")
    card.data.models = [weights_repo]
    card.text = (f"\n# {card.data.title}\n\nThe MCL-MCF multimodal sentiment demo. Weights: "
                 f"[{weights_repo}](https://huggingface.co/{weights_repo}) at commit `{revision}` (the Space variable "
                 f"`{ENV_VAR}`). Deployed with `python -m mclmcf.deploy`.\n")
    return str(card)


def stage_space(folder: Path, weights: str) -> int:
    """Copy the app's files into ``folder`` and write the Space's README; returns the number of files."""
    files = sorted({path for pattern in SPACE_FILES for path in ROOT.glob(pattern)
                    if path.is_file() and "__pycache__" not in path.parts})
    for path in files:
        target = folder / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    (folder / "README.md").write_text(space_card(weights), encoding="utf-8")
    return len(files) + 1


def deploy(args: argparse.Namespace) -> str:
    """Weights repo, Space, variable, hardware, files; returns the Space's URL."""
    if not (ROOT / "app.py").is_file():   # installed from a wheel: the app is not there
        raise DeployError("the Space's files (app.py, examples/, ...) come from a checkout of the project, and this "
                          "installation is not one: run the command in a clone of the repository.")
    api = HfApi(token=get_token())
    step(1, "checking the Hugging Face token ...")
    if not hub_reachable():
        raise DeployError(f"The Hugging Face Hub ({constants.ENDPOINT}) cannot be reached from here.")
    user = authenticate(api)
    print(f"      logged in as {user}", flush=True)
    weights = publish_weights(api, args.weights, args.weights_repo or f"{args.space}-weights", args.private)
    print(f"      {ENV_VAR}={weights}", flush=True)

    step(3, f"Space: creating or updating {args.space} (Gradio) and setting {ENV_VAR} ...")
    url = api.create_repo(args.space, repo_type="space", space_sdk="gradio", private=args.private or None,
                          exist_ok=True)
    # the variable and the hardware before the files: the build the upload starts already runs with both
    api.add_space_variable(args.space, ENV_VAR, weights, description="weights the app loads (mclmcf.deploy)")
    step(4, f"Space: requesting {args.hardware} hardware ...")
    api.request_space_hardware(args.space, args.hardware)
    with tempfile.TemporaryDirectory() as folder:
        count = stage_space(Path(folder), weights)
        step(5, f"Space: uploading the app ({count} files) ...")
        api.upload_folder(repo_id=args.space, repo_type="space", folder_path=folder, delete_patterns="*",
                          commit_message="The MCL-MCF demo (mclmcf.deploy)")
    if args.private:
        print("      note: a private weights repo is read by the Space only with a token: add a read token as the "
              "Space secret HF_TOKEN (Settings -> Variables and secrets).", flush=True)
    return str(url)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        url = deploy(args)
    except DeployError as err:
        print(f"deploy: {err}", file=sys.stderr)
        return 2
    except HfHubHTTPError as err:   # the Hub said no: its own message says why (permissions, quota, names)
        status = err.response.status_code if err.response is not None else None
        print(f"deploy: the Hugging Face Hub refused a request ({status}): {str(err).splitlines()[0]}", file=sys.stderr)
        return 2 if status in (401, 402, 403) else 1
    print(f"Space: {url}", flush=True)
    return 0


def cli() -> None:
    sys.exit(main())


if __name__ == "__main__":
    cli()
