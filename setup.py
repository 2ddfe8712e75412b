"""Build the Cython extensions over csrc/cpu and ship csrc/{common,cuda} in the wheel.

Each ``segengine/_cy/_<name>.pyx`` becomes the extension ``segengine._cy._<name>``;
the C++ files it needs are named in its own ``# distutils: sources = ...`` line.
``SEGENGINE_EXTS=_upsample,_watershed`` limits a development build to those modules.
A release build has no debug information (``-g0``: smaller wheels, faster compiles) and builds
the extensions in parallel, one job per CPU (``SEGENGINE_BUILD_JOBS=N`` sets the count;
``build_ext -j N`` on the command line wins).
``SEGENGINE_DEBUG=1`` builds with the solvers' invariant checks (``SEG_MF_DEBUG``) and
libstdc++ assertions; ``SEGENGINE_SANITIZE=1`` adds AddressSanitizer and UBSan (see
``tools/sanitize_build.sh``, which builds such a copy of the package into its own folder).
"""

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).parent.resolve()
BASE_FLAGS = ["-std=c++17", "-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math",
              "-Wno-unused-function"]


def _compiler_accepts(flags):
    """Return True when the C++ compiler builds and links a tiny OpenMP program with ``flags``."""
    cxx = shlex.split(os.environ.get("CXX", "c++"))
    if not cxx or shutil.which(cxx[0]) is None:
        return False
    # The flags the real compile gets from the environment too (on macOS CPPFLAGS/LDFLAGS
    # point at Homebrew's libomp: omp.h is not on Apple clang's default include path).
    env_flags = [f for var in ("CPPFLAGS", "CXXFLAGS", "LDFLAGS") for f in shlex.split(os.environ.get(var, ""))]
    code = "#include <omp.h>\nint main(){int n=0;\n#pragma omp parallel reduction(+:n)\nn+=1;\nreturn omp_get_max_threads()>0?0:1;}\n"
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "t.cpp"
        src.write_text(code)
        cmd = [*cxx, str(src), "-o", str(Path(tmp) / "t"), *env_flags, *flags]
        return subprocess.run(cmd, capture_output=True).returncode == 0


def openmp_flags():
    if os.environ.get("SEGENGINE_NO_OPENMP"):
        return [], []
    if sys.platform == "darwin":
        candidates = [(["-Xpreprocessor", "-fopenmp"], ["-lomp"])]
    else:
        candidates = [(["-fopenmp"], ["-fopenmp"])]
    for cflags, lflags in candidates:
        if _compiler_accepts(cflags + lflags):
            return cflags, lflags
    print("segengine: OpenMP not found, building serial kernels", file=sys.stderr)
    return [], []


def debug_flags():
    """Extra compile and link flags of the debug / sanitizer builds (empty for a release)."""
    cflags, lflags = [], []
    if os.environ.get("SEGENGINE_DEBUG") or os.environ.get("SEGENGINE_SANITIZE"):
        cflags += ["-O1", "-g", "-DSEG_MF_DEBUG", "-D_GLIBCXX_ASSERTIONS"]
    else:
        # Python's own CFLAGS often carry -g: debug information makes the .so files 5-20x
        # larger and the compile ~30 % slower, and a release wheel ships without it.
        cflags += ["-g0"]
    if os.environ.get("SEGENGINE_SANITIZE"):
        san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]
        # Python's own CFLAGS carry -fwrapv, which makes signed overflow defined and so
        # silently turns off UBSan's signed-integer-overflow check; undo it here.
        cflags += san + ["-fno-wrapv"]
        lflags += san
    return cflags, lflags


def _pyx_sources(pyx):
    """The C++ files named on a .pyx file's ``# distutils: sources = ...`` line."""
    for line in (ROOT / pyx).read_text().splitlines():
        if line.startswith("# distutils: sources"):
            return line.split("=", 1)[1].split()
    return []


def extensions():
    """One Extension per ``segengine/_cy/_*.pyx``, the one with most C++ sources first (a parallel
    build then starts the longest one first). OpenMP flags and Cython are applied when
    ``build_ext`` runs (:class:`BuildExt`), so that making an sdist compiles and generates nothing."""
    dbg_c, dbg_l = debug_flags()
    wanted = {n for n in os.environ.get("SEGENGINE_EXTS", "").split(",") if n}
    exts = []
    for pyx in sorted((ROOT / "segengine" / "_cy").glob("_*.pyx")):
        name = pyx.stem
        if wanted and name not in wanted:
            continue
        exts.append(
            Extension(
                f"segengine._cy.{name}",
                [str(pyx.relative_to(ROOT))],
                include_dirs=["csrc/cpu", "csrc", "csrc/common", np.get_include()],
                language="c++",
                extra_compile_args=BASE_FLAGS + dbg_c,
                extra_link_args=dbg_l,
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            )
        )
    exts.sort(key=lambda e: -len(_pyx_sources(e.sources[0])))
    return exts


class BuildExt(build_ext):
    """``build_ext`` that adds the OpenMP flags, runs Cython, builds the extensions in parallel
    unless told otherwise, and stops with a clear message on MSVC."""

    def finalize_options(self):
        if self.parallel is None:
            jobs = os.environ.get("SEGENGINE_BUILD_JOBS") or os.cpu_count() or 1
            self.parallel = int(jobs)
        super().finalize_options()

    def build_extensions(self):
        if self.compiler.compiler_type == "msvc":
            raise SystemExit("segengine: the C++ kernels need GCC or Clang (they use GCC vector "
                             "extensions and GCC-style flags); MSVC cannot build them. On Windows "
                             "use WSL, or a Linux or macOS machine.")
        from Cython.Build import cythonize

        omp_c, omp_l = openmp_flags()
        for ext in self.extensions:
            ext.extra_compile_args = ext.extra_compile_args + omp_c
            ext.extra_link_args = ext.extra_link_args + omp_l
            if omp_c:
                ext.define_macros = ext.define_macros + [("SEGENGINE_OPENMP", "1")]
            if not ext.sources[0].endswith(".pyx"):
                continue
            new = cythonize([ext], language_level=3,
                            compiler_directives={"boundscheck": False, "wraparound": False,
                                                 "cdivision": True, "embedsignature": True})[0]
            # In place (setuptools has prepared these objects): the generated .cpp, and what the
            # .pyx's "# distutils:" lines add (its C++ sources, libraries).
            for attr in ("sources", "libraries", "language", "include_dirs", "define_macros",
                         "extra_compile_args", "extra_link_args", "depends"):
                setattr(ext, attr, getattr(new, attr))
        _compile_sources_in_parallel(self.compiler, max(1, int(self.parallel or 1)))
        super().build_extensions()


def _compile_sources_in_parallel(compiler, jobs):
    """Compile an extension's C++ sources concurrently, at most ``jobs`` compiles at a time over
    all extensions. ``build_ext -j`` runs extensions in parallel but compiles each one's sources
    in turn: _watershed's five files would otherwise set the build's length. Uses distutils'
    long-stable ``_setup_compile``/``_get_cc_args``/``_compile`` hooks; without them (or with
    one job) the compiler is left as it is."""
    if jobs < 2 or not all(hasattr(compiler, a) for a in ("_setup_compile", "_get_cc_args", "_compile")):
        return
    import threading
    from concurrent.futures import ThreadPoolExecutor

    slots = threading.BoundedSemaphore(jobs)

    def compile_concurrently(sources, output_dir=None, macros=None, include_dirs=None, debug=0,
                             extra_preargs=None, extra_postargs=None, depends=None):
        macros, objects, extra_postargs, pp_opts, build = compiler._setup_compile(
            output_dir, macros, include_dirs, sources, depends, extra_postargs)
        cc_args = compiler._get_cc_args(pp_opts, debug, extra_preargs)

        def one(obj):
            if obj not in build:  # up to date (distutils' own skip)
                return
            src, ext = build[obj]
            with slots:
                compiler._compile(obj, src, ext, cc_args, extra_postargs, pp_opts)

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(one, objects))  # list(): a failed compile raises here
        return objects

    compiler.compile = compile_concurrently


setup(
    packages=find_packages(include=["segengine", "segengine.*"]) + ["segengine._csrc"],
    package_dir={"segengine._csrc": "csrc"},
    package_data={"segengine": ["py.typed"],
                  "segengine._csrc": ["common/*.h", "cuda/*.cu", "cuda/*.cuh"],
                  "segengine.data": ["*.png", "*.npz"]},
    ext_modules=extensions(),
    cmdclass={"build_ext": BuildExt},
)
