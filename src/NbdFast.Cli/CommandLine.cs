using System.CommandLine;

namespace NbdFast.Cli;

/// <summary>The nbdfast command line: options named after nbdkit and qemu-nbd where they exist.</summary>
internal sealed class CommandLine
{
    private readonly Argument<string?> _file = new("FILE") { Arity = ArgumentArity.ZeroOrOne, Description = "Disk image or block device to serve." };
    private readonly Option<string?> _memory = new("--memory", "-m") { Description = "Serve a RAM disk of SIZE bytes (K, M, G, T suffixes) instead of a file.", HelpName = "SIZE" };
    private readonly Option<bool> _writable = new("--writable", "-w") { Description = "Allow writes (the default is read-only)." };
    private readonly Option<bool> _readOnly = new("--read-only", "-r") { Description = "Serve read-only (the default)." };
    private readonly Option<int> _port = new("--port", "-p") { Description = "TCP port to listen on.", DefaultValueFactory = _ => 10809 };
    private readonly Option<string[]> _bind = new("--bind", "-b") { Description = "Address to listen on (repeatable; default: all addresses).", HelpName = "ADDR", AllowMultipleArgumentsPerToken = false };
    private readonly Option<string?> _unix = new("--unix", "-U") { Description = "Listen on a unix domain socket instead of TCP.", HelpName = "PATH" };
    private readonly Option<string> _exportName = new("--export-name", "-e") { Description = "Name of the export.", DefaultValueFactory = _ => string.Empty, HelpName = "NAME" };
    private readonly Option<string?> _description = new("--description", "-D") { Description = "Description of the export, shown by NBD_OPT_LIST and NBD_INFO_DESCRIPTION.", HelpName = "TEXT" };
    private readonly Option<bool> _noList = new("--no-list") { Description = "Refuse NBD_OPT_LIST (clients then get NBD_REP_ERR_POLICY)." };
    private readonly Option<bool> _verbose = new("--verbose", "-v") { Description = "Log each connection to standard error." };
    private readonly Option<bool> _direct = new("--direct") { Description = "Open FILE with O_DIRECT, bypassing the page cache (requests of any alignment still work)." };
    private readonly Option<string?> _tls = new("--tls") { Description = "TLS: off, on (clients may use it) or require (FORCEDTLS). Default: require when --tls-certificates or --tls-psk is given, else off.", HelpName = "off|on|require" };
    private readonly Option<string?> _tlsCertificates = new("--tls-certificates") { Description = "Directory with server-cert.pem, server-key.pem and (for --tls-verify-peer) ca-cert.pem.", HelpName = "DIR" };
    private readonly Option<string?> _tlsPsk = new("--tls-psk") { Description = "TLS with pre-shared keys from FILE ('identity:hexkey' lines, as nbdkit and qemu use; needs OpenSSL 3). Not with --tls-certificates.", HelpName = "FILE" };
    private readonly Option<bool> _tlsVerifyPeer = new("--tls-verify-peer") { Description = "Require client certificates signed by DIR/ca-cert.pem." };
    private readonly Option<string[]> _tlsAllowClient = new("--tls-allow-client") { Description = "With --tls-verify-peer: only clients whose certificate subject DN, common name or DNS/e-mail SAN is NAME (repeatable).", HelpName = "NAME", AllowMultipleArgumentsPerToken = false };
    private readonly Option<string> _io = new("--io") { Description = "Transport: auto (io_uring when available, else sockets), uring or sockets.", DefaultValueFactory = _ => "auto", HelpName = "MODE" };
    private readonly Option<int> _threads = new("--threads", "-t") { Description = "io_uring reactor threads (default: min(cores, 4)).", DefaultValueFactory = _ => Math.Clamp(Environment.ProcessorCount, 1, 4), HelpName = "N" };

    public CommandLine()
    {
        Root = new RootCommand(
            "nbdfast: a fast Network Block Device server.\n\n" +
            "Examples:\n" +
            "  nbdfast disk.img                    serve disk.img read-only as export \"\" on port 10809\n" +
            "  nbdfast --writable disk.img         serve it read-write\n" +
            "  nbdfast --memory 1G --writable      a 1 GiB RAM disk\n" +
            "  nbdfast -U /tmp/nbd.sock disk.img   listen on a unix socket\n" +
            "Then try: nbdinfo nbd://127.0.0.1   or   qemu-img info nbd://127.0.0.1:10809")
        {
            _file, _memory, _writable, _readOnly, _port, _bind, _unix, _exportName, _description, _noList, _verbose, _io, _threads, _direct, _tls, _tlsCertificates, _tlsPsk, _tlsVerifyPeer, _tlsAllowClient,
        };
    }

    public RootCommand Root { get; }

    /// <summary>Turns a successful parse into validated settings; throws <see cref="UsageException"/> on a mistake.</summary>
    public CliSettings Bind(ParseResult result)
    {
        string? file = result.GetValue(_file);
        string? memory = result.GetValue(_memory);
        if (file is not null && file.StartsWith('-') && file.Length > 1)
        {
            throw new UsageException($"unknown option '{file}'");
        }
        if (file is null && memory is null)
        {
            throw new UsageException("give a FILE to serve or --memory SIZE");
        }
        if (file is not null && memory is not null)
        {
            throw new UsageException("give either a FILE or --memory SIZE, not both");
        }
        long? memorySize = null;
        if (memory is not null)
        {
            if (!SizeParser.TryParse(memory, out long size) || size <= 0)
            {
                throw new UsageException($"--memory: '{memory}' is not a size (examples: 512M, 1G)");
            }
            memorySize = size;
        }
        if (file is not null && !File.Exists(file) && !Directory.Exists(file) && !IsDevice(file))
        {
            throw new UsageException($"{file}: no such file");
        }
        if (file is not null && Directory.Exists(file))
        {
            throw new UsageException($"{file}: is a directory");
        }
        if (result.GetValue(_direct) && file is null)
        {
            throw new UsageException("--direct applies to a FILE, not to --memory");
        }
        bool writable = result.GetValue(_writable);
        if (writable && result.GetValue(_readOnly))
        {
            throw new UsageException("--writable and --read-only contradict each other");
        }
        int port = result.GetValue(_port);
        if (port is < 0 or > 65535)
        {
            throw new UsageException($"--port: {port} is not a TCP port");
        }
        string exportName = result.GetValue(_exportName) ?? string.Empty;
        if (System.Text.Encoding.UTF8.GetByteCount(exportName) > 4096 || exportName.Contains('\0'))
        {
            throw new UsageException("--export-name: names are at most 4096 bytes without NUL");
        }
        string[] bind = result.GetValue(_bind) ?? [];
        foreach (string address in bind)
        {
            if (!System.Net.IPAddress.TryParse(address.Trim('[', ']'), out _) && address != "localhost")
            {
                throw new UsageException($"--bind: '{address}' is not an IP address");
            }
        }
        string? unix = result.GetValue(_unix);
        if (unix is not null && System.Text.Encoding.UTF8.GetByteCount(unix) > 107)
        {
            throw new UsageException($"--unix: the path is longer than the 107 bytes a unix socket address holds");
        }
        if (unix is not null && bind.Length > 0)
        {
            throw new UsageException("--unix and --bind cannot be combined");
        }
        IoMode io = result.GetValue(_io) switch
        {
            "auto" => IoMode.Auto,
            "uring" => IoMode.Uring,
            "sockets" => IoMode.Sockets,
            var other => throw new UsageException($"--io: '{other}' is not one of auto, uring, sockets"),
        };
        int threads = result.GetValue(_threads);
        if (threads is < 1 or > 256)
        {
            throw new UsageException($"--threads: {threads} is not between 1 and 256");
        }
        string? certificates = result.GetValue(_tlsCertificates);
        string? psk = result.GetValue(_tlsPsk);
        if (certificates is not null && psk is not null)
        {
            throw new UsageException("--tls-certificates and --tls-psk cannot be combined");
        }
        TlsSetting tls = result.GetValue(_tls) switch
        {
            null => certificates is null && psk is null ? TlsSetting.Off : TlsSetting.Require,
            "off" => TlsSetting.Off,
            "on" => TlsSetting.On,
            "require" => TlsSetting.Require,
            var other => throw new UsageException($"--tls: '{other}' is not one of off, on, require"),
        };
        if (tls != TlsSetting.Off && certificates is null && psk is null)
        {
            throw new UsageException("--tls needs --tls-certificates DIR or --tls-psk FILE");
        }
        bool verifyPeer = result.GetValue(_tlsVerifyPeer);
        string[] allowClients = result.GetValue(_tlsAllowClient) ?? [];
        if ((verifyPeer || allowClients.Length > 0) && tls == TlsSetting.Off)
        {
            throw new UsageException("--tls-verify-peer and --tls-allow-client need TLS (--tls-certificates DIR)");
        }
        if (verifyPeer && psk is not null)
        {
            throw new UsageException("--tls-verify-peer needs --tls-certificates DIR, not --tls-psk");
        }
        if (allowClients.Length > 0 && !verifyPeer)
        {
            throw new UsageException("--tls-allow-client needs --tls-verify-peer");
        }
        return new CliSettings(file, memorySize, writable, port, bind, unix, exportName,
            result.GetValue(_description), result.GetValue(_noList), result.GetValue(_verbose) ? 1 : 0, io, threads, result.GetValue(_direct),
            tls, tls == TlsSetting.Off ? null : certificates, verifyPeer, allowClients, tls == TlsSetting.Off ? null : psk);
    }

    private static bool IsDevice(string path) => path.StartsWith("/dev/", StringComparison.Ordinal) && File.Exists(path);
}
