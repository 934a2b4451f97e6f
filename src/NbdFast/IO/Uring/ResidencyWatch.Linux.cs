namespace NbdFast.IO.Uring;

/// <summary>
/// A reactor thread's tripwire for page-cache READ replies sent without a residency check (each connection
/// earns that in its <see cref="ResidencyTrust"/>). A send from a page that is not cached reads it from the disk
/// inside the kernel's copy, on this thread, and counts as a major page fault of the thread. Replies queued in
/// one ring turn are sent by the next one, so after that turn the thread's fault count (getrusage) is compared
/// with the count before it: a change is a trip, and every connection on this reactor checks again.
/// A send the kernel retries in a later turn (a full socket) faults into the same cumulative count, which the
/// next unchecked reply's turn reads. Reactor thread only.
/// </summary>
internal sealed class ResidencyWatch
{
    private long _faults = -1;
    private bool _queued;
    private bool _sent;
    private bool _baselineWanted;

    /// <summary>Times a major fault after unchecked sends ended the trust of this reactor's connections.</summary>
    public int Trips { get; private set; }

    /// <summary>Times a connection on this reactor started sending unchecked (for tests).</summary>
    public int TrustStarts { get; private set; }

    /// <summary>The fault count cannot be read (getrusage refused): no connection may skip the check.</summary>
    public bool Blind { get; private set; }

    /// <summary>After this turn <see cref="AfterTurn"/> needs the thread's major-fault count.</summary>
    public bool WantsFaultCount => _sent || _baselineWanted;

    /// <summary>A connection starts trusting: the count it will be compared against is taken after this turn.</summary>
    public void NoteTrustStarted()
    {
        TrustStarts++;
        _baselineWanted = true;
    }

    /// <summary>A READ reply was queued without a check; it is sent in the next turn.</summary>
    public void NoteUnchecked() => _queued = true;

    /// <summary>With the thread's major-fault count, when <see cref="WantsFaultCount"/> asked for it.</summary>
    public void AfterTurn(long majorFaults)
    {
        if (majorFaults < 0)
        {
            Blind = true;
            Trips++;
            return;
        }
        if (_sent && _faults >= 0 && majorFaults != _faults)
        {
            Trips++;
        }
        _faults = majorFaults;
        _sent = false;
        _baselineWanted = false;
    }

    /// <summary>At the end of every turn: the replies queued in it go out in the next.</summary>
    public void EndTurn()
    {
        if (_queued)
        {
            _queued = false;
            _sent = true;
        }
    }
}
