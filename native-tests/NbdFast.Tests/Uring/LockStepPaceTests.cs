using NbdFast.IO.Uring;

namespace NbdFast.Tests.Uring;

/// <summary>
/// The rule that lets a reactor poll before sleeping: only a long run of one-request turns from a slow client,
/// with nothing in flight, qualifies; several requests in a turn, a fast pace or a request in flight do not.
/// </summary>
public sealed class LockStepPaceTests
{
    private const long SlowPace = 15;
    private const long LongestGap = 1000;

    private static LockStepPace Fed(int turns, long gap, int requestsPerTurn = 1, long start = 100)
    {
        var pace = new LockStepPace(SlowPace, LongestGap);
        for (int i = 0; i < turns; i++)
        {
            pace.NoteTurn(requestsPerTurn, start + i * gap);
        }
        return pace;
    }

    [Fact]
    public void SlowSingleRequestTurnsInARowAskForPolling()
    {
        Assert.True(Fed(LockStepPace.LockStepTurns + 1, gap: 40).WantsPoll(requestsInFlight: 0));
    }

    [Fact]
    public void TooFewTurnsDoNotAskForPolling()
    {
        Assert.False(Fed(LockStepPace.LockStepTurns - 1, gap: 40).WantsPoll(requestsInFlight: 0));
    }

    [Fact]
    public void ARequestInFlightStopsPolling()
    {
        Assert.False(Fed(LockStepPace.LockStepTurns + 1, gap: 40).WantsPoll(requestsInFlight: 1));
    }

    [Fact]
    public void AFastClientIsNotPolledFor()
    {
        Assert.False(Fed(64, gap: 6).WantsPoll(requestsInFlight: 0));
    }

    [Fact]
    public void TurnsCarryingSeveralRequestsNeverPoll()
    {
        Assert.False(Fed(64, gap: 40, requestsPerTurn: 2).WantsPoll(requestsInFlight: 0));
    }

    [Fact]
    public void ATurnWithSeveralRequestsRestartsTheCount()
    {
        LockStepPace pace = Fed(LockStepPace.LockStepTurns + 1, gap: 40);
        long now = 100 + (LockStepPace.LockStepTurns + 1) * 40;
        pace.NoteTurn(3, now);
        Assert.False(pace.WantsPoll(0));
        for (int i = 1; i < LockStepPace.LockStepTurns; i++)
        {
            pace.NoteTurn(1, now + i * 40);
        }
        Assert.False(pace.WantsPoll(0));
        pace.NoteTurn(1, now + LockStepPace.LockStepTurns * 40);
        Assert.True(pace.WantsPoll(0));
    }

    [Fact]
    public void TurnsWithoutRequestsAreSkipped()
    {
        var pace = new LockStepPace(SlowPace, LongestGap);
        for (int i = 0; i <= LockStepPace.LockStepTurns; i++)
        {
            pace.NoteTurn(1, 100 + i * 40);
            pace.NoteTurn(0, 100 + i * 40 + 5);
        }
        Assert.True(pace.WantsPoll(0));
    }

    [Fact]
    public void AnIdleSpellDoesNotMakeAFastClientLookSlowForLong()
    {
        // A client idle for a long time, then submitting one request per turn every 6 ticks: the one long gap
        // counts as LongestGap, so within a few dozen turns the average is fast again.
        var pace = new LockStepPace(SlowPace, LongestGap);
        pace.NoteTurn(1, 100);
        long now = 100 + 1_000_000_000;
        for (int i = 0; i < 40; i++)
        {
            pace.NoteTurn(1, now + i * 6);
        }
        Assert.False(pace.WantsPoll(0));
    }

    [Fact]
    public void TheFirstTurnIsNotAGapFromTimeZero()
    {
        // Timestamps are large (ticks since boot); the first turn must not count as one huge gap.
        var pace = new LockStepPace(SlowPace, long.MaxValue);
        for (int i = 0; i < 40; i++)
        {
            pace.NoteTurn(1, 5_000_000_000_000 + i * 6);
        }
        Assert.False(pace.WantsPoll(0));
    }
}
