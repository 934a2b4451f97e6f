using NbdFast.Fuzzing;

namespace NbdFast.Tests.Fuzzing;

/// <summary>
/// Every input in the committed fuzz corpora (fuzz/corpus/options and fuzz/corpus/requests: the seeds, and any
/// input a fuzzing run found that crashed, kept as a regression) passes its target's checks. The seeds on disk
/// are also the ones <see cref="Seeds"/> makes, so the corpus cannot drift from the harness.
/// </summary>
public sealed class FuzzCorpusTests
{
    private static readonly string CorpusRoot = Path.Combine(RepositoryRoot(), "fuzz", "corpus");

    [Fact]
    public void OptionsCorpusPasses()
    {
        string[] files = Directory.GetFiles(Path.Combine(CorpusRoot, "options"));
        Assert.NotEmpty(files);
        foreach (string file in files)
        {
            byte[] input = File.ReadAllBytes(file);
            HandshakeConfig config = HandshakeConfig.FromByte(input[0]);
            HandshakeChecker.Check(config, input.AsSpan(1), HandshakeSession.Run(config, input.AsMemory(1)));
        }
    }

    [Fact]
    public void RequestsCorpusPasses()
    {
        string[] files = Directory.GetFiles(Path.Combine(CorpusRoot, "requests"));
        Assert.NotEmpty(files);
        foreach (string file in files)
        {
            byte[] input = File.ReadAllBytes(file);
            TransmissionConfig config = TransmissionConfig.FromByte(input[0]);
            TransmissionChecker.Check(config, TransmissionSession.Run(config, input.AsSpan(1)));
        }
    }

    [Fact]
    public void CommittedSeedsMatchTheHarness()
    {
        foreach ((string target, IReadOnlyList<(string Name, byte[] Input)> seeds) in new[] { ("options", Seeds.Handshakes()), ("requests", Seeds.Transmissions()) })
        {
            foreach ((string name, byte[] input) in seeds)
            {
                string file = Path.Combine(CorpusRoot, target, name + ".bin");
                Assert.True(File.Exists(file), $"{file} is missing: regenerate with `dotnet NbdFast.Fuzz.dll seeds fuzz/corpus`");
                Assert.Equal(input, File.ReadAllBytes(file));
            }
        }
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "NbdFast.sln")))
            {
                return directory.FullName;
            }
        }
        throw new InvalidOperationException($"no NbdFast.sln above {AppContext.BaseDirectory}");
    }
}
