namespace NbdFast.Interop.Tests.Support;

/// <summary>How a test reaches the server.</summary>
public enum Transport
{
    Tcp,
    Unix,
}

/// <summary>
/// The server's I/O engine: Auto is io_uring wherever the kernel allows it (falling back to sockets, so a
/// seccomp-restricted container does not fail spuriously), Sockets forces the socket transport, Uring forces
/// io_uring (the server refuses to start without it).
/// </summary>
public enum Engine
{
    Auto,
    Sockets,
    Uring,
}

public static class TransportExtensions
{
    /// <summary>Every transport with every engine, for data-path theories.</summary>
    public static TheoryData<Transport, Engine> All => new()
    {
        { Transport.Tcp, Engine.Auto },
        { Transport.Tcp, Engine.Sockets },
        { Transport.Unix, Engine.Auto },
        { Transport.Unix, Engine.Sockets },
    };

    /// <summary>Starts nbdfast with <paramref name="arguments"/> on a free loopback port or a temp unix socket.</summary>
    public static Task<NbdfastProcess> StartAsync(this Transport transport, params string[] arguments) => transport switch
    {
        Transport.Tcp => NbdfastProcess.StartTcpAsync(arguments),
        Transport.Unix => NbdfastProcess.StartUnixAsync(arguments),
        _ => throw new ArgumentOutOfRangeException(nameof(transport)),
    };

    /// <summary>As <see cref="StartAsync(Transport, string[])"/>, with <c>--io auto|sockets</c>.</summary>
    public static Task<NbdfastProcess> StartAsync(this Transport transport, Engine engine, params string[] arguments) =>
        transport.StartAsync([.. arguments, "--io", engine.IoArgument()]);

    /// <summary>The <c>--io</c> value that selects <paramref name="engine"/>.</summary>
    public static string IoArgument(this Engine engine) => engine switch
    {
        Engine.Sockets => "sockets",
        Engine.Uring => "uring",
        _ => "auto",
    };
}
