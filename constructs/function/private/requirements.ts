/**
 * Checks a pip requirements file for what `pip install --require-hashes` needs, at synth, so a missing pin fails
 * here with the line number instead of in a Docker build at deploy time.
 *
 * @see https://pip.pypa.io/en/stable/topics/secure-installs/#hash-checking-mode
 * @see https://pip.pypa.io/en/stable/reference/requirements-file-format/
 */

/** One problem, with its 1-based line number in the file. */
export interface RequirementProblem {
  readonly line: number;
  readonly text: string;
  readonly problem: string;
}

/** What {@link checkRequirements} found. */
export interface RequirementsCheck {
  /** The pinned requirements, `name==version`, in file order. */
  readonly pins: string[];
  /** Lines that pip would not install under `--require-hashes`, or that this library refuses. */
  readonly problems: RequirementProblem[];
}

// `name[extra,...]==version` or `===version`, then optional environment markers.
const PINNED = /^(?<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)(?:\[[A-Za-z0-9._,\s-]*\])?\s*===?\s*(?<version>[A-Za-z0-9.*+!_-]+)\s*(?:;.*)?$/;
const HASH_OPTION = /\s--hash[=\s]+(\S+)/g;
const SHA256 = /^sha256:[a-f0-9]{64}$/;
// Options that change where packages come from or pull in other files: refused, so the file alone says what
// gets installed and no index credentials end up in the build context.
const REFUSED_OPTIONS = /^(?:-r|--requirement|-c|--constraint|-e|--editable|-i|--index-url|--extra-index-url|-f|--find-links|--trusted-host)\b/;

/**
 * Parses `text` (a requirements.txt) and returns every line that is not an exact pin with a SHA-256 hash.
 * Joins `\` continuations and drops comments the way pip does.
 */
export function checkRequirements(text: string): RequirementsCheck {
  const pins: string[] = [];
  const problems: RequirementProblem[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let line = lines[i];
    while (line.endsWith('\\') && i + 1 < lines.length) {
      i++;
      line = `${line.slice(0, -1)} ${lines[i]}`;
    }
    // pip drops `#` comments that start a line or follow whitespace.
    const logical = line.replace(/(^|\s)#.*$/, '').trim();
    if (logical === '') {
      continue;
    }
    const problem = (p: string): void => {
      // Index URLs may carry credentials: never repeat them in a message.
      const shown = logical.replace(/:\/\/[^/@\s]*@/g, '://***@');
      problems.push({ line: start, text: shown.length > 100 ? `${shown.slice(0, 97)}...` : shown, problem: p });
    };
    if (REFUSED_OPTIONS.test(logical)) {
      problem('options that name other files, indexes or editable installs are not accepted: list every package pinned and hashed in this one file (pip reads PyPI)');
      continue;
    }
    if (logical.startsWith('-')) {
      // Global options such as --only-binary or --prefer-binary change nothing about what is installed.
      continue;
    }
    const hashes = [...` ${logical}`.matchAll(HASH_OPTION)].map((m) => m[1]);
    const requirement = ` ${logical}`.replace(HASH_OPTION, '').trim();
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(requirement) || /\s@\s/.test(requirement) || requirement.includes('://')) {
      problem('a URL or direct reference; pin a released version from PyPI (name==version)');
      continue;
    }
    const pinned = PINNED.exec(requirement);
    if (!pinned) {
      problem("a requirement pinned to one version with '==' (e.g. numpy==2.1.3)");
      continue;
    }
    if (hashes.length === 0) {
      problem('at least one --hash=sha256:<64 hex digits> (pip-compile --generate-hashes writes them)');
      continue;
    }
    const bad = hashes.find((h) => !SHA256.test(h));
    if (bad !== undefined) {
      problem(`hashes of the form sha256:<64 lower-case hex digits>, not '${bad}'`);
      continue;
    }
    pins.push(`${pinned.groups!.name}==${pinned.groups!.version}`);
  }
  return { pins, problems };
}
