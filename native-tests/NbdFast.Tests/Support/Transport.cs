namespace NbdFast.Tests.Support;

/// <summary>Which of the library's transmission transports an <see cref="InProcessServer"/> serves through.</summary>
public enum Transport
{
    /// <summary><c>new NbdChannel(new NetworkStream(socket))</c>: the stream transport.</summary>
    Streams,

    /// <summary><c>new NbdChannel(socket, engine)</c> with the server's own two-thread <see cref="NbdUringEngine"/>.</summary>
    Uring,
}

/// <summary>xunit data for tests that run on both transports.</summary>
public static class Transports
{
    /// <summary>Both transports, one row each.</summary>
    public static TheoryData<Transport> Both => new() { Transport.Streams, Transport.Uring };

    /// <summary>
    /// For the heavier tests: the stream transport on TCP and on a unix socket, io_uring on TCP.
    /// (<see cref="UringOnUnixStreamsOnBoth"/> is the mirror image, so that between them io_uring sees both.)
    /// </summary>
    public static TheoryData<Transport, bool> StreamsOnBothUringOnTcp => new()
    {
        { Transport.Streams, false },
        { Transport.Streams, true },
        { Transport.Uring, false },
    };

    /// <summary>The stream transport on TCP and on a unix socket, io_uring on a unix socket.</summary>
    public static TheoryData<Transport, bool> UringOnUnixStreamsOnBoth => new()
    {
        { Transport.Streams, false },
        { Transport.Streams, true },
        { Transport.Uring, true },
    };

    /// <summary>Both transports, each with the test's own flag false and true (e.g. file device, unix socket).</summary>
    public static TheoryData<Transport, bool> BothByFlag => new()
    {
        { Transport.Streams, false },
        { Transport.Streams, true },
        { Transport.Uring, false },
        { Transport.Uring, true },
    };

    /// <summary>Both transports on TCP and on a unix socket.</summary>
    public static TheoryData<Transport, bool> BothOnTcpAndUnix => BothByFlag;
}
