using System.CommandLine;

namespace NbdFast.Cli;

/// <summary>
/// The nbdfast command line: options named after nbdkit and qemu-nbd where they exist. Validation lives in
/// CommandLine.Bind.cs, the manual page in <see cref="HelpText"/>.
/// </summary>
internal sealed partial class CommandLine
{
    // Exports
    private readonly Argument<string?> _file = new("FILE") { Arity = ArgumentArity.ZeroOrOne, Description = "Disk image or block device to serve as the default export." };
    private readonly Option<string?> _memory = new("--memory", "-m") { Description = "Serve a RAM disk of SIZE bytes (K, M, G, T suffixes) instead of a FILE.", HelpName = "SIZE" };
    private readonly Option<bool> _writable = new("--writable", "-w") { Description = "Let clients write FILE or the RAM disk (the default is read-only)." };
    private readonly Option<bool> _readOnly = new("--read-only", "-r") { Description = "Serve read-only (the default)." };
    private readonly Option<string> _exportName = new("--export-name", "-e") { Description = "Name of the default export (default: the empty name).", DefaultValueFactory = _ => string.Empty, HelpName = "NAME" };
    private readonly Option<string?> _description = new("--description", "-D") { Description = "Description of the default export, shown by NBD_OPT_LIST and NBD_INFO_DESCRIPTION.", HelpName = "TEXT" };
    private readonly Option<bool> _direct = new("--direct") { Description = "Open FILE with O_DIRECT, bypassing the page cache (requests of any alignment still work)." };
    private readonly Option<bool> _snapshot = new("--snapshot", "-s") { Description = "Copy-on-write: clients may write, but writes go to a temporary overlay that is discarded when the last client leaves; FILE is never modified." };
    private readonly Option<string?> _offset = new("--offset", "-o") { Description = "Serve FILE from this byte offset on (a partition).", HelpName = "SIZE" };
    private readonly Option<string?> _size = new("--size") { Description = "Serve only this many bytes (from --offset).", HelpName = "SIZE" };
    private readonly Option<string[]> _export = new("--export") { Description = "Another export: NAME=PATH or NAME=memory:SIZE, then ,ro ,rw ,direct ,snapshot ,tls-only ,offset=N ,size=N ,max-connections=N ,desc=TEXT (last). Repeatable.", HelpName = "SPEC", AllowMultipleArgumentsPerToken = false };
    private readonly Option<string?> _config = new("--config", "-c") { Description = "Read the exports from a JSON file (see CONFIG FILE); SIGHUP re-reads it.", HelpName = "FILE" };
    private readonly Option<bool> _noList = new("--no-list") { Description = "Refuse NBD_OPT_LIST (clients then get NBD_REP_ERR_POLICY)." };

    // Listening
    private readonly Option<int> _port = new("--port", "-p") { Description = "TCP port to listen on.", DefaultValueFactory = _ => 10809, HelpName = "PORT" };
    private readonly Option<string[]> _bind = new("--bind", "-b") { Description = "Address to listen on, IPv4 or IPv6 (repeatable; default: every address, unless -U is given).", HelpName = "ADDR", AllowMultipleArgumentsPerToken = false };
    private readonly Option<string[]> _unix = new("--unix", "-U") { Description = "Listen on a unix domain socket (repeatable; may be combined with -b).", HelpName = "PATH", AllowMultipleArgumentsPerToken = false };
    private readonly Option<string?> _unixMode = new("--unix-mode") { Description = "Permissions of the unix sockets, in octal (e.g. 660).", HelpName = "MODE" };
    private readonly Option<string?> _unixOwner = new("--unix-owner") { Description = "Owner of the unix sockets: USER, USER:GROUP or :GROUP, by name or number.", HelpName = "USER[:GROUP]" };
    private readonly Option<string[]> _allow = new("--allow") { Description = "Only TCP clients from this address or ADDRESS/PREFIX (IPv4 or IPv6; repeatable). Others are closed before the handshake. Unix socket clients are not filtered.", HelpName = "CIDR", AllowMultipleArgumentsPerToken = false };
    private readonly Option<string?> _pidFile = new("--pidfile", "-P") { Description = "Write the process id to FILE once listening; removed at exit.", HelpName = "FILE" };

    // Limits
    private readonly Option<int> _maxConnections = new("--max-connections") { Description = "Most clients connected at once (default 100).", DefaultValueFactory = _ => 100, HelpName = "N" };
    private readonly Option<int> _maxHandshakes = new("--max-handshakes") { Description = "Most clients still in the handshake at once (default 16).", DefaultValueFactory = _ => 16, HelpName = "N" };
    private readonly Option<double> _handshakeTimeout = new("--handshake-timeout") { Description = "Seconds a client has to finish the handshake, TLS included (default 10; 0 turns it off).", DefaultValueFactory = _ => 10, HelpName = "SECONDS" };
    private readonly Option<double> _idleTimeout = new("--idle-timeout") { Description = "Disconnect a client after this many seconds without a request (default 0: never).", DefaultValueFactory = _ => 0, HelpName = "SECONDS" };
    private readonly Option<int> _maxInFlight = new("--max-in-flight") { Description = "Requests in flight per connection before the server stops reading it (default 64).", DefaultValueFactory = _ => 64, HelpName = "N" };
    private readonly Option<string?> _maxInFlightBytes = new("--max-in-flight-bytes") { Description = "Payload bytes in flight per connection before the server stops reading it (default 64M).", HelpName = "SIZE" };
    private readonly Option<double> _shutdownTimeout = new("--shutdown-timeout") { Description = "Seconds a SIGINT/SIGTERM shutdown may take before open connections are closed (default 30).", DefaultValueFactory = _ => 30, HelpName = "SECONDS" };

    // Transport
    private readonly Option<string> _io = new("--io") { Description = "Transport: auto (io_uring when available, else sockets), uring or sockets.", DefaultValueFactory = _ => "auto", HelpName = "MODE" };
    private readonly Option<int> _threads = new("--threads", "-t") { Description = "io_uring reactor threads (default: min(cores, 4)).", DefaultValueFactory = _ => Math.Clamp(Environment.ProcessorCount, 1, 4), HelpName = "N" };

    // TLS
    private readonly Option<string?> _tls = new("--tls") { Description = "TLS: off, on (clients may use it) or require (FORCEDTLS). Default: require when --tls-certificates or --tls-psk is given, else off.", HelpName = "off|on|require" };
    private readonly Option<string?> _tlsCertificates = new("--tls-certificates") { Description = "Directory with server-cert.pem, server-key.pem and (for --tls-verify-peer) ca-cert.pem.", HelpName = "DIR" };
    private readonly Option<string?> _tlsPsk = new("--tls-psk") { Description = "TLS with pre-shared keys from FILE ('identity:hexkey' lines, as nbdkit and qemu use; needs OpenSSL 3). Not with --tls-certificates.", HelpName = "FILE" };
    private readonly Option<bool> _tlsVerifyPeer = new("--tls-verify-peer") { Description = "Require client certificates signed by DIR/ca-cert.pem." };
    private readonly Option<string[]> _tlsAllowClient = new("--tls-allow-client") { Description = "With --tls-verify-peer: only clients whose certificate subject DN, common name or DNS/e-mail SAN is NAME (repeatable).", HelpName = "NAME", AllowMultipleArgumentsPerToken = false };

    // Logging and metrics (-v/-q are taken out before parsing, see Logging/Verbosity; declared here for --help)
    private readonly Option<bool> _verbose = new("--verbose", "-v") { Description = "More log lines: -v adds one line per connection opened and closed, -vv handshake detail." };
    private readonly Option<bool> _quiet = new("--quiet", "-q") { Description = "Warnings and errors only." };
    private readonly Option<string?> _metrics = new("--metrics") { Description = "Serve metrics in Prometheus text format at http://ADDR:PORT/metrics.", HelpName = "ADDR:PORT" };

    public CommandLine()
    {
        Groups =
        [
            ("Exports", [_memory, _writable, _readOnly, _exportName, _description, _direct, _snapshot, _offset, _size, _export, _config, _noList]),
            ("Listening", [_port, _bind, _unix, _unixMode, _unixOwner, _allow, _pidFile]),
            ("Limits", [_maxConnections, _maxHandshakes, _handshakeTimeout, _idleTimeout, _maxInFlight, _maxInFlightBytes, _shutdownTimeout]),
            ("Transport", [_io, _threads]),
            ("TLS", [_tls, _tlsCertificates, _tlsPsk, _tlsVerifyPeer, _tlsAllowClient]),
            ("Logging and metrics", [_verbose, _quiet, _metrics]),
        ];
        Root = new RootCommand("nbdfast: a fast Network Block Device server.") { _file };
        foreach ((_, Option[] options) in Groups)
        {
            foreach (Option option in options)
            {
                Root.Options.Add(option);
            }
        }
    }

    public RootCommand Root { get; }

    /// <summary>The options in the order and groups the manual page shows them.</summary>
    public (string Title, Option[] Options)[] Groups { get; }

    public Argument<string?> FileArgument => _file;
}
