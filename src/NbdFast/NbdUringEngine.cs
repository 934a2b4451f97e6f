using NbdFast.IO.Uring;

namespace NbdFast;

/// <summary>
/// io_uring reactor threads that serve the transmission phase of connections made with
/// <see cref="NbdChannel(System.Net.Sockets.Socket, NbdUringEngine?, NbdTlsOptions?)"/>. Each reactor owns one ring and the
/// connections assigned to it (round robin). Linux only; <see cref="TryCreate"/> says why when it cannot run
/// (old kernel, seccomp, <c>kernel.io_uring_disabled</c>), and callers fall back to the socket transport.
/// </summary>
public sealed class NbdUringEngine : IDisposable
{
    private readonly Reactor[] _reactors;
    private int _next;

    private NbdUringEngine(Reactor[] reactors) => _reactors = reactors;

    /// <summary>Number of reactor threads.</summary>
    public int Threads => _reactors.Length;

    /// <summary>Default size of each reactor's registered buffer slab.</summary>
    public const long DefaultRegisteredBufferBytes = 64L * 1024 * 1024;

    /// <summary>What the reactors run with (fixed buffers or not), for the log.</summary>
    public string Description => string.Join("; ", _reactors.Select(r => r.BufferStatus).Distinct());

    /// <summary>
    /// Starts <paramref name="threads"/> reactors; null (with the reason) when io_uring is unavailable. For tests,
    /// the environment variable NBDFAST_URING_SETUP_ERRNO=N makes io_uring_setup fail with errno N (see Ring.TryCreate).
    /// </summary>
    /// <param name="threads">Reactor threads.</param>
    /// <param name="reason">Why io_uring cannot be used, when it returns null.</param>
    /// <param name="registeredBufferBytes">Per-reactor slab registered with IORING_REGISTER_BUFFERS (0: none).</param>
    public static NbdUringEngine? TryCreate(int threads, out string? reason, long registeredBufferBytes = DefaultRegisteredBufferBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        if (!OperatingSystem.IsLinux())
        {
            reason = "io_uring needs Linux";
            return null;
        }
        var reactors = new List<Reactor>(threads);
        for (int i = 0; i < threads; i++)
        {
            Reactor? reactor = Reactor.TryStart(i, registeredBufferBytes, out reason);
            if (reactor is null)
            {
                reactors.ForEach(r => r.Dispose());
                return null;
            }
            reactors.Add(reactor);
        }
        reason = null;
        return new NbdUringEngine([.. reactors]);
    }

    /// <summary>True when every reactor enters its ring through the thread's registered-ring table (Linux 5.18+).</summary>
    internal bool RingFdsRegistered => _reactors.All(r => r.Ring.RingFdRegistered);

    internal bool FixedFilesRegistered => _reactors.All(r => r.FixedFiles);

    /// <summary>Managed bytes each reactor thread has allocated so far (for allocation tests).</summary>
    internal Task<long[]> MeasureReactorAllocationsAsync() => Task.WhenAll(_reactors.Select(r => r.MeasureAllocatedBytesAsync()));

    /// <summary>Connections still owned and buffer bytes still rented, summed over the reactors (for leak tests).</summary>
    internal async Task<(int Connections, long BufferBytes)> MeasureResourcesAsync()
    {
        (int Connections, long BufferBytes)[] each = await Task.WhenAll(_reactors.Select(r => r.MeasureResourcesAsync())).ConfigureAwait(false);
        return (each.Sum(e => e.Connections), each.Sum(e => e.BufferBytes));
    }

    /// <summary>Each reactor's page-cache trust starts and trips (for tests).</summary>
    internal Task<(int Starts, int Trips)[]> MeasureResidencyTrustAsync() => Task.WhenAll(_reactors.Select(r => r.MeasureResidencyTrustAsync()));

    internal Reactor NextReactor() => _reactors[(int)((uint)Interlocked.Increment(ref _next) % (uint)_reactors.Length)];

    /// <summary>Stops the reactors once their connections have closed.</summary>
    public void Dispose()
    {
        foreach (Reactor reactor in _reactors)
        {
            reactor.Dispose();
        }
    }
}
