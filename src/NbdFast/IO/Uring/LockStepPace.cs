namespace NbdFast.IO.Uring;

/// <summary>
/// Tells a reactor when its clients are in lock-step with it, the one case where polling before sleeping pays
/// (see Reactor.Spin): the last <see cref="LockStepTurns"/> loop turns that started requests started exactly
/// one each, more than a slow pace apart on average, and no request is in flight now. A turn that started no
/// request (one that only reaped a send's completion) says nothing about the client's pace and is skipped.
/// Pure bookkeeping on timestamps the caller passes in, so the rule is testable without a ring.
/// </summary>
internal struct LockStepPace
{
    /// <summary>Request-bearing turns in a row that must have started exactly one request each.</summary>
    internal const int LockStepTurns = 16;

    private readonly long _slowPaceTicks;
    private readonly long _longestGapTicks;
    private int _singleRequestTurns;
    private long _lastRequestTurn;
    private long _averageGap;

    /// <param name="slowPaceTicks">A client whose requests come further apart than this on average is slow.</param>
    /// <param name="longestGapTicks">
    /// Longer gaps count as this long: after an idle spell the average must not stay "slow" for hundreds of turns
    /// of a fast client.
    /// </param>
    public LockStepPace(long slowPaceTicks, long longestGapTicks)
    {
        _slowPaceTicks = slowPaceTicks;
        _longestGapTicks = longestGapTicks;
    }

    /// <summary>Records a loop turn that ended at <paramref name="now"/> having started <paramref name="requests"/>.</summary>
    public void NoteTurn(int requests, long now)
    {
        if (requests <= 0)
        {
            return;
        }
        if (_lastRequestTurn != 0)
        {
            long gap = Math.Min(now - _lastRequestTurn, _longestGapTicks);
            _averageGap += (gap - _averageGap) / 8;
        }
        _lastRequestTurn = now;
        _singleRequestTurns = requests == 1 ? Math.Min(_singleRequestTurns + 1, LockStepTurns) : 0;
    }

    /// <summary>True when polling before sleeping is likely to catch the client's next request.</summary>
    public readonly bool WantsPoll(int requestsInFlight) =>
        requestsInFlight == 0 && _singleRequestTurns == LockStepTurns && _averageGap > _slowPaceTicks;
}
