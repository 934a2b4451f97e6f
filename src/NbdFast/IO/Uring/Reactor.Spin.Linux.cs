using System.Diagnostics;

namespace NbdFast.IO.Uring;

/// <summary>
/// Polling briefly before sleeping, when the connections are in lock-step with slow clients. At queue depth 1
/// every request finds the reactor asleep, and on a VM waking an idle vCPU costs more than the request itself:
/// measured on the 2-vCPU dev VM (4k randread QD1, unix socket), the floors and nbdfast-uring left the vCPUs
/// 66-69 % idle at 18-21k IOPS, while the sockets transport (whose thread pool spins) reached 1.56x. A reactor
/// whose last 16 turns with requests started one each, more than 15 us apart on average, and that has no
/// request in flight (<see cref="LockStepPace"/>) therefore polls the ring (non-waiting enters) for up to 50 us
/// before it sleeps: 2.1x the IOPS at QD1 for 1.3x the CPU per I/O. At deeper queues a turn soon carries
/// several requests, or they come faster, and that ends the polling.
/// NBDFAST_SPIN_US sets the budget (0 turns it off).
/// </summary>
internal sealed unsafe partial class Reactor
{
    internal static readonly long SpinTicks = ReadSpinTicks();

    // The client's pace: a client that keeps a deep queue but submits one request at a time (fio with one job at
    // QD32) also gives one request per turn, every 6-7 us; polling there only burns CPU (measured: +10 % CPU per
    // I/O for +3 % IOPS), hence the 15 us.
    private LockStepPace _pace = new(MicrosToTicks(15), MicrosToTicks(1000));

    /// <summary>Requests started on this reactor in the current loop turn.</summary>
    internal int RequestsThisTurn;

    /// <summary>
    /// Requests on this reactor's connections between their header and their reply's last byte (a WRITE whose
    /// payload is still arriving counts). Polling only pays when this is zero: then the next thing to happen is
    /// a client's new request. With one in flight the reactor is waiting on a payload, a device or a slow
    /// reader, and the client's pace says nothing about when that ends: 1M sequential writes at QD8 (one
    /// request per turn, 300 us apart) polled on every turn for +15 % CPU per I/O and +2 % IOPS.
    /// </summary>
    internal int RequestsInFlight;

    private static long ReadSpinTicks()
    {
        string? text = Environment.GetEnvironmentVariable("NBDFAST_SPIN_US");
        return MicrosToTicks(long.TryParse(text, out long parsed) && parsed >= 0 ? parsed : 50);
    }

    private static long MicrosToTicks(long micros) => micros * Stopwatch.Frequency / 1_000_000;

    private void NoteTurnRequests()
    {
        if (RequestsThisTurn > 0)
        {
            _pace.NoteTurn(RequestsThisTurn, Stopwatch.GetTimestamp());
            RequestsThisTurn = 0;
        }
    }

    private bool ShouldSpin() => SpinTicks > 0 && ActiveConnections > 0 && _pace.WantsPoll(RequestsInFlight);

    private void SpinForCompletions()
    {
        long deadline = Stopwatch.GetTimestamp() + SpinTicks;
        do
        {
            // A non-waiting enter runs the ring's deferred task work, which is what turns an arrived
            // receive into a completion.
            _ring!.SubmitAndWait(0);
            if (_ring.HasCompletions || !_inbox.IsEmpty)
            {
                return;
            }
        }
        while (Stopwatch.GetTimestamp() < deadline);
    }
}
