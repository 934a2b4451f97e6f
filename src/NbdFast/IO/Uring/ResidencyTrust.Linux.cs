namespace NbdFast.IO.Uring;

/// <summary>
/// When a connection may send page-cache READ replies from the file mapping without first asking the kernel
/// whether every page is cached. The check is a system call per READ (cachestat, about 0.4 µs: some 7 % of a
/// 4 KiB read's server CPU); skipping it risks a send from a page that is not cached, which reads the page from
/// the disk inside the kernel's copy, on the reactor's thread, while its other connections wait.
/// So the checks stop only after a run of <see cref="FirstRun"/> checked reads of this connection's export
/// found every page cached, and only for reads up to <see cref="LargestUnchecked"/> (a larger read's copy dwarfs
/// the check). The reactor's <see cref="ResidencyWatch"/> is the tripwire: a major fault of its thread after
/// unchecked sends ends the trust of all its connections, and each then needs a run twice as long (up to
/// <see cref="LongestRun"/>) before it stops checking again. An export that does not fit in the page cache keeps
/// missing, so its connections never complete a run; one that fits stalls the reactor at most once per run.
/// Measured against checking every read (interleaved pairs, two-job 4 KiB random reads of a cached 1 GiB
/// file): 0.91× the server CPU per I/O over a unix socket (10 pairs), 0.88× over TCP (8).
/// </summary>
internal sealed class ResidencyTrust
{
    internal const int FirstRun = 4096;
    internal const int LongestRun = 1 << 22;
    internal const int LargestUnchecked = 64 * 1024;

    private int _runNeeded = FirstRun;
    private int _run;
    private bool _trusting;
    private int _tripsAtStart;

    /// <summary>The run of cached reads the checks must see before they stop again.</summary>
    public int RunNeeded => _runNeeded;

    /// <summary>True when a READ of <paramref name="length"/> bytes may be sent without the check.</summary>
    public bool MaySkipCheck(ResidencyWatch watch, int length)
    {
        if (!_trusting || length > LargestUnchecked)
        {
            return false;
        }
        if (watch.Trips != _tripsAtStart)
        {
            _trusting = false;
            _runNeeded = Math.Min(_runNeeded * 2, LongestRun);
            return false;
        }
        return true;
    }

    /// <summary>A checked READ found its pages cached (or not).</summary>
    public void NoteChecked(ResidencyWatch watch, bool resident)
    {
        if (!resident)
        {
            _run = 0;
            return;
        }
        if (++_run >= _runNeeded && !_trusting && !watch.Blind)
        {
            _run = 0;
            _trusting = true;
            _tripsAtStart = watch.Trips;
            watch.NoteTrustStarted();
        }
    }
}
