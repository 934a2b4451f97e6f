namespace NbdFast.IO.Uring;

/// <summary>
/// When a reactor may send page-cache READ replies from the file mapping without first asking the kernel
/// whether every page is cached. The check is a system call per READ (cachestat, about 0.4 µs: some 7 % of a
/// 4 KiB read's server CPU); skipping it risks a send from a page that is not cached, which reads the page from
/// the disk inside the kernel's copy, on the reactor's thread, while its other connections wait.
/// So the checks stop only after a run of <see cref="FirstRun"/> checked reads found every page cached, and
/// while they are stopped the thread's count of major page faults, read after each ring turn that sent
/// unchecked replies, is the tripwire: a send that had to wait for the disk counts one, and the checks resume,
/// now needing a run twice as long (up to <see cref="LongestRun"/>) before they stop again. A file that does not fit in the page cache keeps
/// missing, so its run never completes and it is checked throughout; one that fits stalls the reactor at most
/// once per run. Any other major fault of the thread (its own code paged back in) only resumes the checks.
/// Reactor thread only.
/// </summary>
internal sealed class ResidencyTrust
{
    internal const int FirstRun = 4096;
    internal const int LongestRun = 1 << 22;

    private int _runNeeded = FirstRun;
    private int _run;
    private bool _startPending;
    private bool _uncheckedSinceCount;
    private long _faultsAtStart;

    /// <summary>True while READs are sent from the mapping unchecked.</summary>
    public bool Trusting { get; private set; }

    /// <summary>How many times a major fault ended the trust (for tests and the log).</summary>
    public int Trips { get; private set; }

    /// <summary>The run of cached reads the checks must see before they stop again.</summary>
    public int RunNeeded => _runNeeded;

    /// <summary>
    /// After a ring turn <see cref="AfterTurn"/> needs the thread's major-fault count: when the trust is to start,
    /// or when unchecked replies were queued since the last count (their sends ran in that turn). A send the
    /// kernel had to retry later faults into the same cumulative count, which the next unchecked reply reads.
    /// </summary>
    public bool WantsFaultCount => _startPending || _uncheckedSinceCount;

    /// <summary>A READ reply was queued without a check.</summary>
    public void NoteUnchecked() => _uncheckedSinceCount = true;

    /// <summary>A checked READ found its pages cached (or not).</summary>
    public void NoteChecked(bool resident)
    {
        if (!resident)
        {
            _run = 0;
            return;
        }
        if (++_run >= _runNeeded)
        {
            _run = 0;
            _startPending = true;
        }
    }

    /// <summary>After a ring turn: starts the trust, or ends it when the thread took a major fault meanwhile.</summary>
    public void AfterTurn(long majorFaults)
    {
        _uncheckedSinceCount = false;
        if (majorFaults < 0)
        {
            // No count to watch (getrusage refused): keep checking every READ.
            _startPending = false;
            Trusting = false;
            return;
        }
        if (_startPending)
        {
            _startPending = false;
            Trusting = true;
            _faultsAtStart = majorFaults;
            return;
        }
        if (Trusting && majorFaults != _faultsAtStart)
        {
            Trusting = false;
            Trips++;
            _runNeeded = Math.Min(_runNeeded * 2, LongestRun);
        }
    }
}
